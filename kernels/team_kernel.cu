// The block-per-trajectory kernel: each block is a team (model/team.hpp)
// that integrates one trajectory with run_team_slot, its small per-step
// buffers in shared memory and its state there too when the plan says so.
// One block per trajectory: when a trajectory stops early its block retires
// and the hardware starts the next pending block on the freed multiprocessor,
// so no lane waits for a slower neighbour.
#include "block_team.cuh"
#include "cuda_check.hpp"
#include "team_kernel.hpp"

#include "collapse/integrators/gradient_descent.hpp"
#include "collapse/integrators/runge_kutta4.hpp"

namespace collapse::cuda {
namespace {

// team_threads_for never asks for more; two blocks of them per
// multiprocessor caps registers at 128 per thread.
constexpr int max_team_threads = 256;

template <class Real, class Integrator>
__global__ void __launch_bounds__(max_team_threads, 2) integrate_trajectories_team(const TrajectoryKernelArgs<Real> args, const std::size_t resident_reals,
                                            const bool state_in_shared) {
    extern __shared__ double shared_memory[]; // the reduction slots (blockDim.x doubles), then the Reals
    const BlockTeam team{static_cast<int>(threadIdx.x), static_cast<int>(blockDim.x), shared_memory};
    Real* resident = reinterpret_cast<Real*>(shared_memory + blockDim.x);
    Real* shared_state = state_in_shared ? resident + resident_reals : nullptr;
    run_team_slot<Real, Integrator>(team, args, static_cast<std::int64_t>(blockIdx.x), resident, shared_state);
}

template <class Real, class Integrator>
void launch(const TrajectoryKernelArgs<Real>& args, const TeamLaunchPlan& plan, cudaStream_t stream) {
    integrate_trajectories_team<Real, Integrator>
        <<<static_cast<unsigned>(args.count), plan.threads_per_block, plan.shared_bytes, stream>>>(
            args, plan.resident_reals, plan.shared_state_reals > 0);
}

template <class Real, class Integrator>
void allow(std::size_t bytes) {
    COLLAPSE_CUDA_CHECK(cudaFuncSetAttribute(integrate_trajectories_team<Real, Integrator>,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
}

} // namespace

template <class Real>
void launch_team_kernel(const TrajectoryKernelArgs<Real>& args, const TeamLaunchPlan& plan, IntegratorMethod method,
                        cudaStream_t stream) {
    if (args.count <= 0) return;
    if (method == IntegratorMethod::rk4) launch<Real, RungeKutta4>(args, plan, stream);
    else launch<Real, GradientDescent>(args, plan, stream);
    COLLAPSE_CUDA_CHECK(cudaGetLastError());
}

void allow_team_shared_memory(std::size_t bytes) {
    allow<float, GradientDescent>(bytes);
    allow<float, RungeKutta4>(bytes);
    allow<double, GradientDescent>(bytes);
    allow<double, RungeKutta4>(bytes);
}

template void launch_team_kernel<float>(const TrajectoryKernelArgs<float>&, const TeamLaunchPlan&, IntegratorMethod,
                                        cudaStream_t);
template void launch_team_kernel<double>(const TrajectoryKernelArgs<double>&, const TeamLaunchPlan&, IntegratorMethod,
                                         cudaStream_t);

} // namespace collapse::cuda
