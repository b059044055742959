// Test support for the lockstep path on the host (test_lockstep.cpp,
// test_lockstep_step.cpp): HostLockstepBackend, the CUDA backend's batch
// with run_lockstep_on_host in place of the device runner, and step
// launchers that run the step differently: the old unfused sequence, or the
// first step body replayed as a CUDA Graph would.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <span>
#include <string>

#include "backend_test_support.hpp"
#include "batch_packing.hpp"
#include "collapse/lockstep/batched_gemm.hpp"
#include "collapse/lockstep/lockstep_layout.hpp"
#include "lockstep/lockstep_batch.hpp"

namespace collapse::testing {

// The step as it was before the elementwise passes were fused (one pass per
// functor of lockstep_functors.hpp, in their old order), as a step launcher
// that ignores the fused step body it is given and runs this instead.
struct UnfusedStepLauncher {
    template <class Real, class StepBody>
    void operator()(const lockstep::LockstepView<Real>& v, const StepBody&) const {
        using namespace lockstep;
        using lockstep::detail::for_each_index;
        using lockstep::detail::product;
        const CpuBatchedGemm gemm;
        const auto& policy = thrust::host;
        const LockstepShape& s = v.shape;
        const std::int64_t B = s.lanes;
        const int N = s.samples, K = s.classes, d = s.dim, H = s.head;
        const GemmOp none = GemmOp::none, transpose = GemmOp::transpose;
        const std::int64_t xs = s.x_size(), ys = s.y_size(), as = s.a_size(), ws = s.w_size();
        if (H > 0) gemm(product<Real>(B, none, none, d, d, H, v.head_b, H, as, v.head_a, d, as, Real(0), v.w, d, ws));
        for_each_index(policy, B * ws, PlainHeadIdentity<Real>{v});
        gemm(product<Real>(B, none, transpose, N, d, d, v.x, d, xs, v.w, d, ws, Real(0), v.projected_x, d, xs));
        gemm(product<Real>(B, none, transpose, K, d, d, v.y, d, ys, v.w, d, ws, Real(0), v.projected_y, d, ys));
        for_each_index(policy, B * ys, ClassSums<Real>{v});
        if (H > 0) gemm(product<Real>(B, none, transpose, K, d, d, v.class_sum, d, ys, v.w, d, ws, Real(0), v.projected_sum, d, ys));
        for_each_index(policy, B * N, SampleResiduals<Real>{v});
        for_each_index(policy, B * ys, LabelResiduals<Real>{v});
        gemm(product<Real>(B, none, none, N, d, d, v.residual_x, d, xs, v.w, d, ws, Real(1), v.gradient_x, d, xs));
        gemm(product<Real>(B, none, none, K, d, d, v.residual_y, d, ys, v.w, d, ws, Real(1), v.gradient_y, d, ys));
        if (H > 0) {
            gemm(product<Real>(B, transpose, none, d, d, N, v.residual_x, d, xs, v.x, d, xs, Real(0), v.gradient_w, d, ws));
            gemm(product<Real>(B, transpose, none, d, d, K, v.residual_y, d, ys, v.y, d, ys, Real(1), v.gradient_w, d, ws));
            gemm(product<Real>(B, transpose, none, H, d, d, v.head_b, H, as, v.gradient_w, d, ws, Real(0), v.gradient_a, d, as));
            gemm(product<Real>(B, none, transpose, d, H, d, v.gradient_w, d, ws, v.head_a, d, as, Real(0), v.gradient_b, H, as));
        }
        for_each_index(policy, B, WatchStep<Real>{v});
        for_each_index(policy, B * s.state_size(), UpdateState<Real>{v});
        ++*v.loop_step;
    }
};

// A launcher that keeps the first step body it is given and replays that
// one for every later step, as a CUDA Graph captured once does: the step
// must take nothing step-dependent from the host.
struct ReplayingStepLauncher {
    std::function<void()> captured;
    int captures = 0;

    template <class Real, class StepBody>
    void operator()(const lockstep::LockstepView<Real>&, const StepBody& step_body) {
        if (!captured) {
            captured = step_body;
            ++captures;
        }
        captured();
    }
};

enum class StepKind { fused, unfused_reference, replayed };

// A Backend whose run_batch is the CUDA backend's with the lockstep path on the host.
class HostLockstepBackend final : public HostTestBackend<HostLockstepBackend> {
public:
    explicit HostLockstepBackend(int poll_interval = 16, std::int64_t lanes = 0, StepKind kind = StepKind::fused)
        : kind_(kind) {
        options_.poll_interval = poll_interval;
        options_.lanes = lanes;
    }
    std::string name() const override { return "cuda-lockstep-host"; }

    template <class Real>
    void run_typed(const SweepSpec& spec, const Grid& grid, std::span<const std::int64_t> flat_indices,
                   BatchOutput& out) {
        cuda::HostBatch<Real> host(cuda::HostMemory::pageable);
        cuda::pack_batch(spec, grid, flat_indices, host, out);
        for (TrajectorySummary& summary : out.summary) summary = TrajectorySummary{}; // must be written
        const lockstep::CpuBatchedGemm gemm;
        std::int64_t steps = 0;
        if (kind_ == StepKind::unfused_reference)
            steps = lockstep::run_lockstep_on_host(host, spec.integrator.method, out, gemm, options_, UnfusedStepLauncher{});
        else if (kind_ == StepKind::replayed) {
            ReplayingStepLauncher replaying;
            steps = lockstep::run_lockstep_on_host(host, spec.integrator.method, out, gemm, options_, replaying);
            captures += replaying.captures;
        } else
            steps = lockstep::run_lockstep_on_host(host, spec.integrator.method, out, gemm, options_);
        longest_loop = std::max(longest_loop, steps);
        cuda::unpack_final_states(spec, host, out);
    }

private:
    lockstep::LockstepOptions options_;
    StepKind kind_;

public:
    std::int64_t longest_loop = 0; // loop steps of the longest batch run so far
    int captures = 0;              // step bodies the replaying launcher kept, over all batches
};

inline std::set<TrajectoryStatus> statuses_of(const std::map<std::int64_t, BatchOutput>& results) {
    std::set<TrajectoryStatus> statuses;
    for (const auto& [flat, output] : results) statuses.insert(output.summary[0].status);
    return statuses;
}

} // namespace collapse::testing
