// The lockstep integration of one batch (docs/cuda-backend.md, "Large
// states: lockstep cuBLAS path"), written once and generic over where it
// runs: `policy` is a Thrust execution policy (thrust::host in the tests,
// thrust::cuda::par_nosync.on(stream) on the device) for the elementwise passes
// (lockstep_functors.hpp), and `gemm` a batched matrix product
// (lockstep::CpuBatchedGemm, cuda::CublasLtBatchedGemm) for the products.
// Every array of `v` must live where `policy` and `gemm` run.
#pragma once

#include <thrust/copy.h>
#include <thrust/count.h>
#include <thrust/fill.h>
#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>

#include "collapse/lockstep/batched_gemm.hpp"
#include "collapse/lockstep/fused_passes.hpp"
#include "collapse/lockstep/lockstep_functors.hpp"

namespace collapse::lockstep {

// Lanes still running are counted (a device-to-host read) every
// `poll_interval` steps; there the lanes whose trajectories stopped are
// refilled from the queue, and the loop ends when no lane runs and the
// queue is empty. Stopped trajectories are frozen by the masked update, so
// polling less often changes no result. poll_interval <= 0 polls never when
// every trajectory has its own lane and every 16 steps otherwise.
// `lanes`: L, the number of lanes the batch's B trajectories run on (0 = B);
// the caller allocates the view's per-lane arrays for lane_count(B, lanes).
struct LockstepOptions {
    int poll_interval = 16;
    std::int64_t lanes = 0;
};

namespace detail {

template <class Policy, class Functor>
void for_each_index(const Policy& policy, std::int64_t count, const Functor& functor) {
    if (count <= 0) return;
    thrust::for_each(policy, thrust::counting_iterator<std::int64_t>(0), thrust::counting_iterator<std::int64_t>(count),
                     functor);
}

// C = alpha op(A) op(B) + beta C over the batch, with fixed per-trajectory strides.
template <class Real>
GemmBatch<Real> product(std::int64_t batch, GemmOp op_a, GemmOp op_b, int m, int n, int k, const Real* a, int ld_a,
                        std::int64_t stride_a, const Real* b, int ld_b, std::int64_t stride_b, Real beta, Real* c,
                        int ld_c, std::int64_t stride_c) {
    GemmBatch<Real> g;
    g.op_a = op_a;
    g.op_b = op_b;
    g.m = m;
    g.n = n;
    g.k = k;
    g.alpha = Real(1);
    g.a = a;
    g.ld_a = ld_a;
    g.stride_a = stride_a;
    g.b = b;
    g.ld_b = ld_b;
    g.stride_b = stride_b;
    g.beta = beta;
    g.c = c;
    g.ld_c = ld_c;
    g.stride_c = stride_c;
    g.count = static_cast<int>(batch);
    return g;
}

} // namespace detail

// One evaluation of the loss terms and the (M-scaled) gradients at the
// current state of every lane, active or not (empty lanes compute nothing
// in the elementwise passes; their products are discarded).
// Ten batched products (four when no trajectory has a head) and two fused
// elementwise passes (fused_passes.hpp); docs/cuda-backend.md counts the FLOPs.
template <class Real, class Policy, class Gemm>
void evaluate_lockstep(const Policy& policy, const Gemm& gemm, const LockstepView<Real>& v) {
    using detail::product;
    const LockstepShape& s = v.shape;
    const std::int64_t B = s.lanes; // the products run over the lanes
    const int N = s.samples, K = s.classes, d = s.dim, H = s.head;
    const GemmOp none = GemmOp::none, transpose = GemmOp::transpose;
    const std::int64_t xs = s.x_size(), ys = s.y_size(), as = s.a_size(), ws = s.w_size();

    // W = B A (d x H times H x d); then class sums CS_k, and W = I for plain trajectories.
    if (H > 0) gemm(product<Real>(B, none, none, d, d, H, v.head_b, H, as, v.head_a, d, as, Real(0), v.w, d, ws));
    const ClassSumsAndIdentity<Real> sums_and_identity{v};
    detail::for_each_index(policy, sums_and_identity.size(), sums_and_identity);
    // Rows W x_i and W y_k: X W^T, Y W^T; W CS_k for the target pull without stop-gradient.
    gemm(product<Real>(B, none, transpose, N, d, d, v.x, d, xs, v.w, d, ws, Real(0), v.projected_x, d, xs));
    gemm(product<Real>(B, none, transpose, K, d, d, v.y, d, ys, v.w, d, ws, Real(0), v.projected_y, d, ys));
    if (H > 0) gemm(product<Real>(B, none, transpose, K, d, d, v.class_sum, d, ys, v.w, d, ws, Real(0), v.projected_sum, d, ys));
    // R1_i, -(1-s) Q_i, loss and accuracy terms; R2_k, -(1-s) P_k.
    const Residuals<Real> residuals{v};
    detail::for_each_index(policy, residuals.size(), residuals);
    // M dL/dx_i = W^T R1_i - (1-s) Q_i: rows of R1 W, added to what is there.
    gemm(product<Real>(B, none, none, N, d, d, v.residual_x, d, xs, v.w, d, ws, Real(1), v.gradient_x, d, xs));
    gemm(product<Real>(B, none, none, K, d, d, v.residual_y, d, ys, v.w, d, ws, Real(1), v.gradient_y, d, ys));
    if (H == 0) return;
    // M dL/dW = R1^T X + R2^T Y; then M dL/dA = B^T (M dL/dW), M dL/dB = (M dL/dW) A^T.
    gemm(product<Real>(B, transpose, none, d, d, N, v.residual_x, d, xs, v.x, d, xs, Real(0), v.gradient_w, d, ws));
    gemm(product<Real>(B, transpose, none, d, d, K, v.residual_y, d, ys, v.y, d, ys, Real(1), v.gradient_w, d, ws));
    gemm(product<Real>(B, transpose, none, H, d, d, v.head_b, H, as, v.gradient_w, d, ws, Real(0), v.gradient_a, d, as));
    gemm(product<Real>(B, none, transpose, d, H, d, v.gradient_w, d, ws, v.head_a, d, as, Real(0), v.gradient_b, H, as));
}

// One whole step of every lane, with nothing step-dependent outside device
// memory (the loop step is *v.loop_step), so that it can be captured once
// and replayed: the evaluation, the SPEC §3 watch, the masked update, and
// the loop step advanced. 14 launches with a head in the batch, 8 without.
template <class Real, class Policy, class Gemm>
void lockstep_step(const Policy& policy, const Gemm& gemm, const LockstepView<Real>& v) {
    evaluate_lockstep(policy, gemm, v);
    detail::for_each_index(policy, v.shape.lanes, WatchStep<Real>{v});
    const UpdateAndAdvance<Real> update{v};
    detail::for_each_index(policy, update.size(), update);
}

// How run_lockstep launches a step: `launch(v, step_body)` runs the
// callable step_body (one lockstep_step on the view v) once, now or as a
// replay of an earlier capture of it for the same view. On the host, and on
// the device without CUDA Graphs, it simply calls it.
struct DirectStepLauncher {
    template <class Real, class StepBody>
    void operator()(const LockstepView<Real>&, const StepBody& step_body) const {
        step_body();
    }
};

// Integrates every trajectory of the batch with gradient descent, from the
// states in `pool` (per-trajectory StateLayout at each task's pool_offset)
// to its stopping step, and writes the final states back into `pool`,
// traces into v.label_distance & co. (NaN after the stopping step) and
// summaries into v.summaries. Returns the number of loop steps it ran.
//
// The B trajectories run on v.shape.lanes = L lanes: lanes 0..L-1 start
// with trajectories 0..L-1, the rest wait in the queue. At a poll with free
// lanes and a non-empty queue, after the step's masked update: the stopped
// trajectories' states go back to the pool (once: the lane is then refilled
// or emptied), the inactive lanes are compacted into v.free_lanes
// (thrust::copy_if) and the first min(free, queued) of them take the next
// queued trajectories from the next loop step on. Each trajectory's
// arithmetic is per lane and independent of the lane, so L and the polling
// interval change no bit.
//
// Between polls the host only launches steps (`launch`, DirectStepLauncher
// or a CUDA Graph replay): nothing in a step reads back. The host reads
// device memory only at a poll: thrust::count_if returns a count, and at a
// refill thrust::copy_if returns the end of the free-lane list; both wait
// for the stream, once per poll_interval steps.
template <class Real, class Policy, class Gemm, class StepLauncher = DirectStepLauncher>
std::int64_t run_lockstep(const Policy& policy, const Gemm& gemm, const LockstepView<Real>& v, Real* pool,
                          std::int64_t max_steps, const LockstepOptions& options = {},
                          StepLauncher&& launch = StepLauncher{}) {
    const LockstepShape& s = v.shape;
    const std::int64_t B = s.batch, L = s.lanes;
    if (B == 0) return 0;
    if (L <= 0 || L > B) throw std::invalid_argument("run_lockstep: the view needs 1 to B lanes");
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const std::int64_t traces = B * s.record_count;
    double* const all_traces[] = {v.label_distance, v.projected_distance, v.accuracy, v.loss};
    for (double* trace : all_traces)
        if (traces > 0) thrust::fill(policy, trace, trace + traces, nan);
    detail::for_each_index(policy, L, StartLanes<Real>{v});
    detail::for_each_index(policy, L * s.state_size(), TransferState<Real>{v, pool, true});
    detail::for_each_index(policy, 1, SetLoopStep{v.loop_step, 0});
    const int poll_interval = options.poll_interval > 0 ? options.poll_interval : (L < B ? 16 : 0);
    const auto step_body = [&policy, &gemm, &v] { lockstep_step(policy, gemm, v); };
    std::int64_t next = L;       // the first queued trajectory
    std::int64_t last_start = 0; // the loop step the latest trajectory started at
    std::int64_t step = 0;
    for (;; ++step) {
        // The masked update leaves stopped and empty lanes alone, so a step
        // after the last trajectory stopped changes nothing.
        launch(v, step_body);
        // Every trajectory stops at most max_steps after its start.
        if (next == B && step >= last_start + max_steps) break;
        if (poll_interval <= 0 || (step + 1) % poll_interval != 0) continue;
        const std::int64_t active = thrust::count_if(policy, v.watch, v.watch + L, IsActive{});
        if (active == 0 && next == B) break;
        if (active == L || next == B) continue;
        // Compaction: the inactive lanes, in increasing order.
        const std::int64_t* const listed =
            thrust::copy_if(policy, thrust::counting_iterator<std::int64_t>(0),
                            thrust::counting_iterator<std::int64_t>(L), v.watch, v.free_lanes, IsInactive{});
        const std::int64_t free_count = listed - v.free_lanes;
        const std::int64_t refill = std::min(free_count, B - next);
        detail::for_each_index(policy, free_count * s.state_size(), TransferState<Real>{v, pool, false, v.free_lanes});
        detail::for_each_index(policy, free_count * s.state_size(), RefillLanes<Real>{v, pool, next, refill, step + 1});
        next += refill;
        last_start = step + 1;
    }
    detail::for_each_index(policy, L * s.state_size(), TransferState<Real>{v, pool, false});
    return step;
}

} // namespace collapse::lockstep
