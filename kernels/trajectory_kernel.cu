// The thread-per-trajectory kernel: each thread integrates one trajectory from
// its initial state to its stopping step with the same run_trajectory /
// evaluate code the CPU backend runs, evaluating collapse and divergence
// every step and writing traces at the record points, without returning to
// the host. State, gradient, workspace and integrator scratch live in global
// memory at per-trajectory offsets. team_kernel.cu holds the
// block-per-trajectory version with shared-memory state, which the backend
// prefers where its buffers fit (docs/cuda-backend.md).
#include "cuda_check.hpp"
#include "trajectory_kernel.hpp"

#include "collapse/integrators/gradient_descent.hpp"
#include "collapse/integrators/runge_kutta4.hpp"
#include "collapse/trajectory/runner.hpp"

namespace collapse::cuda {
namespace {

template <class Real, class Integrator>
__global__ void integrate_trajectories(const TrajectoryKernelArgs<Real> args) {
    for (;;) {
        const auto slot = static_cast<std::int64_t>(atomicAdd(args.next_slot, 1ULL));
        if (slot >= args.count) return;
        run_batch_slot<Real, Integrator>(args, slot);
    }
}

template <class Real, class Integrator>
KernelResources resources_of() {
    cudaFuncAttributes attributes{};
    COLLAPSE_CUDA_CHECK(cudaFuncGetAttributes(&attributes, integrate_trajectories<Real, Integrator>));
    KernelResources resources;
    resources.local_bytes = attributes.localSizeBytes;
    resources.registers = attributes.numRegs;
    resources.max_threads_per_block = attributes.maxThreadsPerBlock;
    return resources;
}

} // namespace

LaunchShape choose_launch_shape(std::int64_t count, int multiprocessors) {
    int threads = 128;
    while (threads > 32 && (count + threads - 1) / threads < multiprocessors) threads /= 2;
    LaunchShape shape;
    shape.threads_per_block = threads;
    shape.blocks = static_cast<int>((count + threads - 1) / threads);
    return shape;
}

namespace {

template <class Real, class Integrator>
void launch(const TrajectoryKernelArgs<Real>& args, int multiprocessors, cudaStream_t stream) {
    LaunchShape shape = choose_launch_shape(args.count, multiprocessors);
    int resident_blocks = 0;
    COLLAPSE_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
        &resident_blocks, integrate_trajectories<Real, Integrator>, shape.threads_per_block, 0));
    if (resident_blocks > 0 && shape.blocks > resident_blocks * multiprocessors)
        shape.blocks = resident_blocks * multiprocessors;
    COLLAPSE_CUDA_CHECK(cudaMemsetAsync(args.next_slot, 0, sizeof(unsigned long long), stream));
    integrate_trajectories<Real, Integrator><<<shape.blocks, shape.threads_per_block, 0, stream>>>(args);
}

} // namespace

template <class Real>
void launch_trajectory_kernel(const TrajectoryKernelArgs<Real>& args, IntegratorMethod method, int multiprocessors,
                              cudaStream_t stream) {
    if (args.count <= 0) return;
    if (method == IntegratorMethod::rk4) launch<Real, RungeKutta4>(args, multiprocessors, stream);
    else launch<Real, GradientDescent>(args, multiprocessors, stream);
    // Launch-configuration errors show here; faults inside the kernel show at
    // the caller's stream synchronisation.
    COLLAPSE_CUDA_CHECK(cudaGetLastError());
}

KernelResources kernel_resources(Precision precision, IntegratorMethod method) {
    const bool rk4 = method == IntegratorMethod::rk4;
    if (precision == Precision::float32)
        return rk4 ? resources_of<float, RungeKutta4>() : resources_of<float, GradientDescent>();
    return rk4 ? resources_of<double, RungeKutta4>() : resources_of<double, GradientDescent>();
}

template void launch_trajectory_kernel<float>(const TrajectoryKernelArgs<float>&, IntegratorMethod, int, cudaStream_t);
template void launch_trajectory_kernel<double>(const TrajectoryKernelArgs<double>&, IntegratorMethod, int,
                                               cudaStream_t);

} // namespace collapse::cuda
