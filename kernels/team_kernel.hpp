// The block-per-trajectory kernel's interface (HOOMD-style: the kernel lives
// in team_kernel.cu behind one driver function). A CUDA block is a team
// (model/team.hpp) that integrates one trajectory with the same runner and
// integrators as every other path and the team form of the model
// (model/team_model.hpp). Small per-step buffers (W, G, W y_k, class sums)
// live in shared memory; the trajectory's state too while it fits.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "collapse/config.hpp"
#include "collapse/model/hd.hpp"
#include "collapse/model/team_model.hpp"
#include "collapse/trajectory/runner.hpp"
#include "device_limits.hpp"
#include "trajectory_kernel.hpp"

namespace collapse::cuda {

// How a batch runs on the team kernel; the same for every block of a launch.
struct TeamLaunchPlan {
    int threads_per_block = 0;
    std::size_t resident_reals = 0;    // the largest TeamWorkspaceLayout::resident_size of the batch
    std::size_t shared_state_reals = 0; // the largest state size when states sit in shared memory, else 0
    std::size_t shared_bytes = 0;       // reduction slots + resident + shared state
    // Blocks one multiprocessor holds at once as far as shared memory and
    // threads allow (registers are the occupancy API's business at launch).
    int blocks_per_multiprocessor = 0;
};

// Shared memory one block needs: a double per thread for reductions, then
// the resident buffers, then (optionally) the state.
std::size_t team_shared_bytes(int threads_per_block, std::size_t resident_reals, std::size_t state_reals,
                              std::size_t real_bytes);

// Threads per block from the per-sample work (N d entries per phase), a
// power of two in [32, 256]: at least ~8 entries per thread, so barriers stay
// a small part of each phase. A function of the shape only, so results never
// depend on the batch (the loss reduction order depends on the team size).
int team_threads_for(const TrajectoryDims& dims);

// The plan for a batch of tasks on a device with `limits`, or
// threads_per_block = 0 when even the resident buffers exceed the opt-in
// shared memory of a block (the caller then uses another kernel).
// `state_in_shared_memory` false forces the state into global memory. The
// team size stays a function of the shape alone (team_threads_for), so a
// result does not depend on which GPU ran it.
template <class Real>
TeamLaunchPlan plan_team_launch(const TrajectoryTask<Real>* tasks, std::int64_t count, const DeviceLimits& limits,
                                bool state_in_shared_memory = true);

// One team's work on trajectory `slot`. `resident` holds plan.resident_reals
// entries; `shared_state`, when not null, plan.shared_state_reals: the state
// is copied there at the start and back at the end. `shared_streamed`, when
// not null, replaces the trajectory's streamed rows in global memory (the
// warp kernel keeps them in shared memory where they fit). __host__
// __device__ so that tests can run a team's threads on the host (emulation).
template <class Real, class Integrator, class Team>
COLLAPSE_HD inline void run_team_slot(const Team& team, const TrajectoryKernelArgs<Real>& args, std::int64_t slot,
                                      Real* resident, Real* shared_state, Real* shared_streamed = nullptr) {
    const TrajectoryTask<Real> task = args.tasks[slot];
    const ModelProblem<Real> problem = problem_of(args, task);
    int* class_members = args.class_members + task.class_member_offset;
    build_class_members(team, problem, class_members);

    Real* global_state = args.states + task.state_offset;
    const long state_size = static_cast<long>(StateLayout(task.dims).size);
    TrajectoryBuffers<Real> buffers;
    buffers.state = global_state;
    buffers.gradient = args.gradients + task.state_offset;
    buffers.integrator_scratch = args.scratch + task.scratch_offset;
    if (shared_state != nullptr) {
        team_for(team, state_size, [&](long e) { shared_state[e] = global_state[e]; });
        team.sync();
        buffers.state = shared_state;
    }
    Real* streamed = shared_streamed != nullptr ? shared_streamed : args.team_streamed + task.team_streamed_offset;
    const TeamModel<Real> model{problem, TeamBuffers<Real>{resident, streamed, class_members}};
    run_trajectory<Real, Integrator>(team, model, task.dims, buffers, task.settings, recorder_of(args, slot));
    if (shared_state != nullptr) {
        team_for(team, state_size, [&](long e) { global_state[e] = shared_state[e]; });
        team.sync(); // the next trajectory of this block reuses shared memory
    }
}

// Launches one block per trajectory on `stream` and checks the launch.
template <class Real>
void launch_team_kernel(const TrajectoryKernelArgs<Real>& args, const TeamLaunchPlan& plan, IntegratorMethod method,
                        cudaStream_t stream);

// Lets the team kernels use up to `bytes` of dynamic shared memory (the
// opt-in above 48 KiB); also proves the binary has code for this device.
void allow_team_shared_memory(std::size_t bytes);

extern template void launch_team_kernel<float>(const TrajectoryKernelArgs<float>&, const TeamLaunchPlan&,
                                               IntegratorMethod, cudaStream_t);
extern template void launch_team_kernel<double>(const TrajectoryKernelArgs<double>&, const TeamLaunchPlan&,
                                                IntegratorMethod, cudaStream_t);
extern template TeamLaunchPlan plan_team_launch<float>(const TrajectoryTask<float>*, std::int64_t, const DeviceLimits&,
                                                       bool);
extern template TeamLaunchPlan plan_team_launch<double>(const TrajectoryTask<double>*, std::int64_t, const DeviceLimits&,
                                                        bool);

} // namespace collapse::cuda
