// Host side of a lockstep batch: turns a packed HostBatch (batch_packing.hpp)
// into the lockstep problem arrays (per-trajectory labels, degrees, class
// membership lists, tasks), and storage for every array of a LockstepView.
// `run_lockstep_on_host` runs the whole path on the CPU (thrust::host and
// CpuBatchedGemm); the tests compare it with the CPU backend.
#pragma once

#include <thrust/execution_policy.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "batch_packing.hpp"
#include "collapse/lockstep/batched_gemm.hpp"
#include "collapse/lockstep/lockstep_layout.hpp"
#include "lockstep/lockstep_algorithm.hpp"

namespace collapse::lockstep {

template <class T>
using HostVector = std::vector<T>;

// The fixed data of a batch (tasks, labels, degrees, class membership
// lists), given a vector-like container per element type (std::vector on
// the host, DeviceBuffer on the device).
template <class Real, template <class> class Buffer>
struct LockstepProblemArrays {
    Buffer<LockstepTask<Real>> tasks;
    Buffer<int> primary_label, second_label, member_offset, members;
    Buffer<Real> label_degree;

    // The view's problem pointers.
    void bind(LockstepView<Real>& v) const {
        v.tasks = tasks.data(), v.primary_label = primary_label.data(), v.second_label = second_label.data();
        v.label_degree = label_degree.data(), v.member_offset = member_offset.data(), v.members = members.data();
    }
};

// The fixed data of a batch, on the host, ready to be viewed or uploaded.
template <class Real>
struct LockstepProblem : LockstepProblemArrays<Real, HostVector> {
    LockstepShape shape;
};

// Whether the lockstep path can run this batch: one K, N, d, the embedding kind.
template <class Real>
bool lockstep_supports(const cuda::HostBatch<Real>& host, IntegratorMethod method) {
    if (method != IntegratorMethod::gd) return false;
    if (host.count == 0) return true;
    const TrajectoryDims& first = host.tasks[0].dims;
    for (std::int64_t b = 0; b < host.count; ++b) {
        const TrajectoryDims& dims = host.tasks[static_cast<std::size_t>(b)].dims;
        if (dims.teacher_student() || dims.classes != first.classes || dims.samples != first.samples ||
            dims.dim != first.dim)
            return false;
    }
    return true;
}

template <class Real>
LockstepProblem<Real> make_lockstep_problem(const cuda::HostBatch<Real>& host, IntegratorMethod method) {
    if (!lockstep_supports(host, method))
        throw std::invalid_argument("the lockstep path runs gradient descent on the embedding kind with one K, N, d");
    LockstepProblem<Real> problem;
    LockstepShape& s = problem.shape;
    s.batch = host.count;
    s.lanes = host.count; // every trajectory on its own lane until the caller says otherwise
    s.record_count = static_cast<int>(host.record_steps.size());
    if (host.count == 0) return problem;
    s.samples = host.tasks[0].dims.samples;
    s.classes = host.tasks[0].dims.classes;
    s.dim = host.tasks[0].dims.dim;
    for (std::int64_t b = 0; b < host.count; ++b) s.head = std::max(s.head, host.tasks[static_cast<std::size_t>(b)].dims.head_dim);
    // A batch with a head is padded to the grid's widest (HostBatch::grid_widest_head): padding is
    // exact, and one width for every batch keeps the head products' shape, and so their algorithm
    // and bits, independent of which trajectories share the batch. A batch of plain trajectories
    // skips the head products altogether (W = I is exact in every product).
    if (s.head > 0) s.head = std::max(s.head, host.grid_widest_head);
    const LockstepSizes sizes(s);
    const auto N = static_cast<std::size_t>(s.samples), K = static_cast<std::size_t>(s.classes);
    problem.tasks.resize(static_cast<std::size_t>(s.batch));
    problem.primary_label.resize(static_cast<std::size_t>(sizes.samples));
    problem.second_label.resize(static_cast<std::size_t>(sizes.samples));
    problem.label_degree.resize(static_cast<std::size_t>(sizes.labels));
    problem.member_offset.resize(static_cast<std::size_t>(sizes.member_offsets));
    problem.members.assign(static_cast<std::size_t>(sizes.members), 0);
    for (std::size_t b = 0; b < problem.tasks.size(); ++b) {
        const cuda::TrajectoryTask<Real>& task = host.tasks[b];
        LockstepTask<Real>& own = problem.tasks[b];
        own.head_dim = task.dims.head_dim;
        own.stop_gradient = task.stop_gradient;
        own.inverse_pair_count = task.inverse_pair_count;
        own.settings = task.settings;
        own.pool_offset = task.state_offset;
        int* primary = problem.primary_label.data() + b * N;
        int* second = problem.second_label.data() + b * N;
        std::copy_n(host.primary_labels.data() + task.primary_label_offset, N, primary);
        std::copy_n(host.second_labels.data() + task.second_label_offset, N, second);
        std::copy_n(host.label_degrees.data() + task.label_degree_offset, K, problem.label_degree.data() + b * K);
        // S_k in increasing sample order: count, prefix sums, fill.
        int* offset = problem.member_offset.data() + b * (K + 1);
        int* members = problem.members.data() + b * 2 * N;
        std::fill_n(offset, K + 1, 0);
        for (std::size_t i = 0; i < N; ++i) {
            ++offset[primary[i] + 1];
            if (second[i] >= 0) ++offset[second[i] + 1];
        }
        for (std::size_t k = 0; k < K; ++k) offset[k + 1] += offset[k];
        std::vector<int> next(offset, offset + K);
        for (std::size_t i = 0; i < N; ++i) {
            members[next[static_cast<std::size_t>(primary[i])]++] = static_cast<int>(i);
            if (second[i] >= 0) members[next[static_cast<std::size_t>(second[i])]++] = static_cast<int>(i);
        }
    }
    return problem;
}

// Every per-lane array of a LockstepView, given a vector-like container per
// element type (std::vector on the host, DeviceBuffer on the device).
template <class Real, template <class> class Buffer>
struct LockstepArrays {
    Buffer<Real> x, y, head_a, head_b, w, projected_x, projected_y, class_sum, projected_sum, residual_x, residual_y,
        gradient_x, gradient_y, gradient_w, gradient_a, gradient_b, sample_loss;
    Buffer<int> sample_correct;
    Buffer<LockstepWatch> watch;
    Buffer<std::int64_t> lane_trajectory, lane_first_step, free_lanes, loop_step;

    void resize(const LockstepShape& shape) {
        const LockstepSizes z(shape);
        auto n = [](std::int64_t count) { return static_cast<std::size_t>(count); };
        Buffer<Real>* const sample_blocks[] = {&x, &projected_x, &residual_x, &gradient_x};
        Buffer<Real>* const label_blocks[] = {&y, &projected_y, &class_sum, &projected_sum, &residual_y, &gradient_y};
        Buffer<Real>* const head_blocks[] = {&head_a, &head_b, &gradient_a, &gradient_b};
        for (Buffer<Real>* buffer : sample_blocks) buffer->resize(n(z.per_sample_block));
        for (Buffer<Real>* buffer : label_blocks) buffer->resize(n(z.per_label_block));
        for (Buffer<Real>* buffer : head_blocks) buffer->resize(n(z.head_a));
        w.resize(n(z.head_w));
        gradient_w.resize(n(z.head_w));
        sample_loss.resize(n(z.lane_samples));
        sample_correct.resize(n(z.lane_samples));
        watch.resize(n(z.lanes));
        lane_trajectory.resize(n(z.lanes));
        lane_first_step.resize(n(z.lanes));
        free_lanes.resize(n(z.lanes));
        loop_step.resize(1);
    }

    // The view's state, evaluation, watch and lane pointers; the caller sets the rest.
    void bind(LockstepView<Real>& v) {
        v.x = x.data(), v.y = y.data(), v.head_a = head_a.data(), v.head_b = head_b.data(), v.w = w.data();
        v.projected_x = projected_x.data(), v.projected_y = projected_y.data(), v.class_sum = class_sum.data();
        v.projected_sum = projected_sum.data(), v.residual_x = residual_x.data(), v.residual_y = residual_y.data();
        v.gradient_x = gradient_x.data(), v.gradient_y = gradient_y.data(), v.gradient_w = gradient_w.data();
        v.gradient_a = gradient_a.data(), v.gradient_b = gradient_b.data(), v.sample_loss = sample_loss.data();
        v.sample_correct = sample_correct.data(), v.watch = watch.data();
        v.lane_trajectory = lane_trajectory.data(), v.lane_first_step = lane_first_step.data();
        v.free_lanes = free_lanes.data(), v.loop_step = loop_step.data();
    }
};

// The lockstep path on the CPU: thrust::host for the passes, `gemm` for the
// products, on options.lanes lanes (0: one per trajectory), each step
// through `launch` (lockstep_algorithm.hpp). `host` must
// hold the initial states (device_initial_states off);
// afterwards it holds the final states, as DeviceBatchRunner::run leaves it.
// Traces and summaries go into `out` (prepared by pack_batch).
template <class Real, class Gemm = CpuBatchedGemm, class StepLauncher = DirectStepLauncher>
std::int64_t run_lockstep_on_host(cuda::HostBatch<Real>& host, IntegratorMethod method, BatchOutput& out,
                                  const Gemm& gemm = {}, const LockstepOptions& options = {},
                                  StepLauncher&& launch = StepLauncher{}) {
    if (host.device_initial_states)
        throw std::invalid_argument("run_lockstep_on_host needs the host's initial states (device_initial_states off)");
    LockstepProblem<Real> problem = make_lockstep_problem(host, method);
    if (problem.shape.batch == 0) return 0;
    problem.shape.lanes = lane_count(problem.shape.batch, options.lanes);
    LockstepArrays<Real, HostVector> arrays;
    arrays.resize(problem.shape);
    LockstepView<Real> v;
    v.shape = problem.shape;
    problem.bind(v);
    arrays.bind(v);
    v.record_steps = host.record_steps.data();
    cuda::point_results_at(v, out);
    return run_lockstep(thrust::host, gemm, v, host.states.data(), problem.tasks[0].settings.max_steps, options,
                        std::forward<StepLauncher>(launch));
}

} // namespace collapse::lockstep
