// The trajectory kernel's interface, kept free of device code so host-side
// .cpp files (packing, the backend class) can include it: HOOMD-style, the
// kernel itself lives in trajectory_kernel.cu behind one driver function.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "collapse/config.hpp"
#include "collapse/model/hd.hpp"
#include "collapse/model/layout.hpp"
#include "collapse/results.hpp"
#include "collapse/trajectory/runner.hpp"

namespace collapse::cuda {

// Everything one thread needs to rebuild its trajectory's ModelProblem,
// TrajectoryBuffers and RunSettings. Offsets are in elements into the batch
// pools of TrajectoryKernelArgs; head widths vary along the grid, so state
// sizes (and hence offsets) differ from trajectory to trajectory.
template <class Real>
struct TrajectoryTask {
    TrajectoryDims dims;
    bool stop_gradient = false;
    Real inverse_pair_count = 0; // 1 / M
    RunSettings settings;
    std::size_t state_offset = 0;         // StateLayout(dims).size entries; gradient pool uses the same offset
    std::size_t workspace_offset = 0;     // WorkspaceLayout(dims).size entries
    std::size_t scratch_offset = 0;       // Integrator::scratch_vectors * state size entries
    std::size_t second_label_offset = 0;  // N entries, per trajectory (depends on f)
    std::size_t label_degree_offset = 0;  // K entries, per trajectory (depends on f)
    std::size_t primary_label_offset = 0; // N entries, shared by the trajectories of one seed
    std::size_t inputs_offset = 0;        // N*p entries, shared per seed; teacher_student only
    // Block-per-trajectory kernel only (team_kernel.hpp):
    std::size_t team_streamed_offset = 0; // TeamWorkspaceLayout(dims).streamed_size entries
    std::size_t class_member_offset = 0;  // class_member_entries(dims) ints
};

// Device pointers of one batch. Traces are [count][record_count] doubles and
// must hold NaN on entry: the runner leaves entries after the stopping step alone.
template <class Real>
struct TrajectoryKernelArgs {
    std::int64_t count = 0;
    const TrajectoryTask<Real>* tasks = nullptr;
    Real* states = nullptr;
    Real* gradients = nullptr;
    Real* workspaces = nullptr;
    Real* scratch = nullptr;
    const int* primary_labels = nullptr;
    const int* second_labels = nullptr;
    const Real* label_degrees = nullptr;
    const Real* inputs = nullptr;
    const std::int64_t* record_steps = nullptr;
    int record_count = 0;
    double* label_distance = nullptr;
    double* projected_distance = nullptr;
    double* accuracy = nullptr;
    double* loss = nullptr;
    TrajectorySummary* summaries = nullptr;
    // Block-per-trajectory kernel only; the thread kernel uses `workspaces`.
    Real* team_streamed = nullptr;
    int* class_members = nullptr;
    // Thread kernel only: the work queue's head, zero at launch. A thread
    // whose trajectory stops takes the next slot, so lanes freed by early
    // collapse do not idle while the rest of their warp runs on.
    unsigned long long* next_slot = nullptr;
};

// Trajectory `slot`'s fixed data, rebuilt from the pools.
template <class Real>
COLLAPSE_HD inline ModelProblem<Real> problem_of(const TrajectoryKernelArgs<Real>& args, const TrajectoryTask<Real>& task) {
    ModelProblem<Real> problem;
    problem.dims = task.dims;
    problem.stop_gradient = task.stop_gradient;
    problem.inverse_pair_count = task.inverse_pair_count;
    problem.primary_label = args.primary_labels + task.primary_label_offset;
    problem.second_label = args.second_labels + task.second_label_offset;
    problem.label_degree = args.label_degrees + task.label_degree_offset;
    problem.inputs = task.dims.teacher_student() ? args.inputs + task.inputs_offset : nullptr;
    return problem;
}

// Where trajectory `slot`'s traces and summary go.
template <class Real>
COLLAPSE_HD inline TrajectoryRecorder recorder_of(const TrajectoryKernelArgs<Real>& args, std::int64_t slot) {
    const std::size_t trace_start = static_cast<std::size_t>(slot) * static_cast<std::size_t>(args.record_count);
    TrajectoryRecorder recorder;
    recorder.record_steps = args.record_steps;
    recorder.record_count = args.record_count;
    recorder.label_distance = args.label_distance + trace_start;
    recorder.projected_distance = args.projected_distance + trace_start;
    recorder.accuracy = args.accuracy + trace_start;
    recorder.loss = args.loss + trace_start;
    recorder.summary = args.summaries + slot;
    return recorder;
}

// The work of one kernel thread: rebuild trajectory `slot`'s problem,
// buffers and recorder from the pools and run it. __host__ __device__, so the
// host can execute a batch exactly as the kernel does (docs/cuda-backend.md).
template <class Real, class Integrator>
COLLAPSE_HD inline void run_batch_slot(const TrajectoryKernelArgs<Real>& args, std::int64_t slot) {
    const TrajectoryTask<Real> task = args.tasks[slot];
    const ModelProblem<Real> problem = problem_of(args, task);
    TrajectoryBuffers<Real> buffers;
    buffers.state = args.states + task.state_offset;
    buffers.gradient = args.gradients + task.state_offset;
    buffers.workspace = args.workspaces + task.workspace_offset;
    buffers.integrator_scratch = args.scratch + task.scratch_offset;
    const TrajectoryRecorder recorder = recorder_of(args, slot);
    run_trajectory<Real, Integrator>(problem, buffers, task.settings, recorder);
}

struct LaunchShape {
    int blocks = 0;
    int threads_per_block = 0;
};

// One thread per trajectory at a time. Blocks shrink (128 -> 64 -> 32
// threads) until the grid covers every multiprocessor, so a small batch still
// spreads out; the launch then caps the grid at what the device holds at once
// and the threads take further slots from the work queue. Results never
// depend on the shape or the order: trajectories do not interact.
LaunchShape choose_launch_shape(std::int64_t count, int multiprocessors);

// Launches integrate_trajectories<Real, method> on `stream` and checks the
// launch (not its completion: the caller synchronises and checks that).
template <class Real>
void launch_trajectory_kernel(const TrajectoryKernelArgs<Real>& args, IntegratorMethod method, int multiprocessors,
                              cudaStream_t stream);

// What the compiled kernel needs per thread. Asking also proves the binary
// holds code this device can run (cudaErrorNoKernelImageForDevice otherwise).
struct KernelResources {
    std::size_t local_bytes = 0; // per-thread stack frame (evaluate's Real[128] residuals live here)
    int registers = 0;
    int max_threads_per_block = 0;
};
KernelResources kernel_resources(Precision precision, IntegratorMethod method);

extern template void launch_trajectory_kernel<float>(const TrajectoryKernelArgs<float>&, IntegratorMethod, int,
                                                     cudaStream_t);
extern template void launch_trajectory_kernel<double>(const TrajectoryKernelArgs<double>&, IntegratorMethod, int,
                                                      cudaStream_t);

} // namespace collapse::cuda
