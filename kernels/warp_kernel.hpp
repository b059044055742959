// The warp-per-trajectory kernel for small states (docs/cuda-backend.md,
// "Warp kernel"). Each warp of a block is a team of 32 lanes
// (model/warp_team.hpp) that integrates one trajectory with run_team_slot:
// the same runner, integrators and team form of the model as the block
// kernel, with __syncwarp for barriers and shuffles for reductions, so many
// trajectories are resident per multiprocessor and no block barrier exists.
// Warps take trajectories from a work queue, so a warp whose trajectory
// stops early takes the next one instead of idling.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "collapse/config.hpp"
#include "collapse/model/warp_team.hpp"
#include "device_limits.hpp"
#include "team_kernel.hpp"
#include "trajectory_kernel.hpp"

namespace collapse::cuda {

// Threads of a warp-kernel block: four warps. Small blocks pack finely into
// a multiprocessor's shared memory; warps of one block never wait for each
// other.
inline constexpr int warps_per_warp_block = 4;

// How a batch runs on the warp kernel; the same for every warp of a launch.
// Each warp owns a slice of the block's dynamic shared memory: its resident
// buffers, then its streamed rows (W x_i, R1_i) and its state where the plan
// puts them there.
struct WarpLaunchPlan {
    int warps_per_block = 0;            // 0: this batch cannot run on the warp kernel
    std::size_t resident_reals = 0;     // the largest TeamWorkspaceLayout::resident_size of the batch
    std::size_t shared_streamed_reals = 0; // the largest streamed_size when the rows sit in shared memory, else 0
    std::size_t shared_state_reals = 0; // the largest state when it sits in shared memory, else 0
    std::size_t slice_reals = 0;        // one warp's slice, a multiple of 4 reals (16-byte aligned slices)
    std::size_t shared_bytes = 0;       // per block
    int blocks_per_multiprocessor = 0;  // what shared memory and threads allow (registers: the launch asks the runtime)
};

// Offsets in one warp's slice.
COLLAPSE_HD inline std::size_t warp_slice_streamed_offset(const WarpLaunchPlan& plan) { return plan.resident_reals; }
COLLAPSE_HD inline std::size_t warp_slice_state_offset(const WarpLaunchPlan& plan) {
    return plan.resident_reals + plan.shared_streamed_reals;
}

// The smallest number of warps per multiprocessor a placement in shared
// memory may leave (two per scheduler): below it, the state or rows stay in
// global memory (L1/L2 cached), since a warp-per-trajectory kernel hides
// latency with many warps. Provisional until measured.
inline constexpr int min_resident_warps_per_multiprocessor = 8;

// The plan for a batch: the resident buffers always in shared memory (no plan
// when one warp's do not fit), then the state and then the streamed rows
// while `min_resident_warps_per_multiprocessor` warps still fit.
// `state_in_shared_memory` false keeps both in global memory (tests).
template <class Real>
WarpLaunchPlan plan_warp_launch(const TrajectoryTask<Real>* tasks, std::int64_t count, const DeviceLimits& limits,
                                bool state_in_shared_memory = true);

// The rule of COLLAPSE_CUDA_KERNEL=auto, provisional until measured on a
// device: the warp kernel when N d <= warp_kernel_max_entries (the small
// shape, K = 4, N = 200, d = 8, has 1600). There a block would give each of
// its threads a dozen entries per phase between ~13 barriers a step, while a
// warp gives each lane ~50 with none, and holds 4x the trajectories.
inline constexpr long warp_kernel_max_entries = 4096;
bool prefer_warp_kernel(const TrajectoryDims& dims);

// One warp's work on trajectory `slot`, given its slice of shared memory.
template <class Real, class Integrator, class Team>
COLLAPSE_HD inline void run_warp_slot(const Team& team, const TrajectoryKernelArgs<Real>& args, const WarpLaunchPlan& plan,
                                      std::int64_t slot, Real* slice) {
    Real* shared_streamed = plan.shared_streamed_reals > 0 ? slice + warp_slice_streamed_offset(plan) : nullptr;
    Real* shared_state = plan.shared_state_reals > 0 ? slice + warp_slice_state_offset(plan) : nullptr;
    run_team_slot<Real, Integrator>(team, args, slot, slice, shared_state, shared_streamed);
}

// Launches the warp kernel on `stream` (grid capped at what the device holds
// at once; the work queue args.next_slot is zeroed first) and checks the launch.
template <class Real>
void launch_warp_kernel(const TrajectoryKernelArgs<Real>& args, const WarpLaunchPlan& plan, IntegratorMethod method,
                        int multiprocessors, cudaStream_t stream);

// Lets the warp kernels use up to `bytes` of dynamic shared memory per block.
void allow_warp_shared_memory(std::size_t bytes);

extern template void launch_warp_kernel<float>(const TrajectoryKernelArgs<float>&, const WarpLaunchPlan&,
                                               IntegratorMethod, int, cudaStream_t);
extern template void launch_warp_kernel<double>(const TrajectoryKernelArgs<double>&, const WarpLaunchPlan&,
                                                IntegratorMethod, int, cudaStream_t);
extern template WarpLaunchPlan plan_warp_launch<float>(const TrajectoryTask<float>*, std::int64_t, const DeviceLimits&,
                                                       bool);
extern template WarpLaunchPlan plan_warp_launch<double>(const TrajectoryTask<double>*, std::int64_t,
                                                        const DeviceLimits&, bool);

} // namespace collapse::cuda
