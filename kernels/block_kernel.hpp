// The fused block-per-trajectory kernel (docs/cuda-backend.md, "Fused block
// kernel"): one block per trajectory, one pass over X per step
// (model/fused_block.hpp), for gd on the embedding kind with
// d in {8, 16, 32, 64}. HOOMD-style: the kernel lives in block_kernel.cu
// behind one driver; the plan (block_plan.cpp) and the block's body
// (run_block_slot) are host code too, so host tests emulate the block.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "collapse/config.hpp"
#include "collapse/model/fused_block_run.hpp"
#include "collapse/model/hd.hpp"
#include "device_limits.hpp"
#include "trajectory_kernel.hpp"

namespace collapse::cuda {

// How a batch runs on the fused block kernel; the same for every block.
// Neither the team size nor the tile size changes a bit of the results
// (fused_block.hpp), so both may follow the device.
struct BlockLaunchPlan {
    int threads_per_block = 0; // 0: no plan (unsupported shape or method, or too little shared memory)
    int tile_samples = 0;      // 256, 128, 64 or 32
    int dim = 0;               // the kernel's template d
    std::size_t shared_reals = 0; // FusedBlockLayout::reals
    std::size_t shared_bytes = 0; // the reduction slots (a double per thread) + shared_reals
    int blocks_per_multiprocessor = 0;
    FusedMath math = FusedMath::fma; // tensor: the products on mma tiles (compute capability 8.0 and up)
};

// COLLAPSE_CUDA_TENSOR_CORES=off|on (unset: off, until a device measures the
// tensor path): the fused block kernel's products on tensor cores.
FusedMath fused_math_from_environment();

// gd, embedding kind, d in {8, 16, 32, 64}, int indices (team_indices_fit_int).
// rk4 and teacher-student take the team kernel.
bool block_kernel_supports(const TrajectoryDims& dims, IntegratorMethod method);

// The plan for a batch on a device with `limits`: threads from the shape
// (team_threads_for), and the largest tile of 256, 128, 64 or 32 samples
// (no larger than the block or N rounded up to 32) that leaves shared memory
// for the two blocks per multiprocessor the registers allow; the largest
// that fits at all when none does. `math` tensor is taken where the device
// has the mma instructions (compute capability 8.0 and up), else fma; the
// tensor tiles need no shared memory of their own.
template <class Real>
BlockLaunchPlan plan_block_launch(const TrajectoryTask<Real>* tasks, std::int64_t count, IntegratorMethod method,
                                  const DeviceLimits& limits, FusedMath math = FusedMath::fma);

// Shared memory of a block: the slots, then the FusedBlockLayout.
std::size_t block_shared_bytes(int threads_per_block, std::size_t shared_reals, std::size_t real_bytes);

// One block's work on trajectory `slot`: `shared` holds plan.shared_reals.
// The X buffers are the state and the gradient pool (same offset, same size).
template <class Real, int D, FusedMath Math = FusedMath::fma, class Team>
COLLAPSE_HD inline void run_block_slot(const Team& team, const TrajectoryKernelArgs<Real>& args,
                                       const BlockLaunchPlan& plan, std::int64_t slot, Real* shared) {
    const TrajectoryTask<Real> task = args.tasks[slot];
    FusedBlockTrajectory<Real> job;
    job.problem = problem_of(args, task);
    int* class_members = args.class_members + task.class_member_offset;
    build_class_members(team, job.problem, class_members);
    job.class_members = class_members;
    job.state = args.states + task.state_offset;
    job.spare = args.gradients + task.state_offset;
    job.shared = shared;
    job.tile_samples = plan.tile_samples;
    job.settings = task.settings;
    job.recorder = recorder_of(args, slot);
    run_fused_trajectory<D, Math>(team, job);
}

// Launches one block per trajectory on `stream` and checks the launch.
template <class Real>
void launch_block_kernel(const TrajectoryKernelArgs<Real>& args, const BlockLaunchPlan& plan, cudaStream_t stream);

// Lets the block kernels use up to `bytes` of dynamic shared memory.
void allow_block_shared_memory(std::size_t bytes);

extern template void launch_block_kernel<float>(const TrajectoryKernelArgs<float>&, const BlockLaunchPlan&,
                                                cudaStream_t);
extern template void launch_block_kernel<double>(const TrajectoryKernelArgs<double>&, const BlockLaunchPlan&,
                                                 cudaStream_t);
extern template BlockLaunchPlan plan_block_launch<float>(const TrajectoryTask<float>*, std::int64_t, IntegratorMethod,
                                                         const DeviceLimits&, FusedMath);
extern template BlockLaunchPlan plan_block_launch<double>(const TrajectoryTask<double>*, std::int64_t,
                                                          IntegratorMethod, const DeviceLimits&, FusedMath);

} // namespace collapse::cuda
