// The fused block-per-trajectory kernel (block_kernel.hpp): one block per
// trajectory runs run_block_slot; the embedding dimension is a template
// parameter, and so is FusedMath (the products on FMA micro-tiles or on
// tensor cores): the launch picks the instantiation for the batch's d and the plan's math.
#include "block_kernel.hpp"
#include "block_team.cuh"
#include "cuda_check.hpp"

namespace collapse::cuda {
namespace {

// team_threads_for never asks for more; two blocks of them per
// multiprocessor cap registers at 128 per thread.
constexpr int max_block_threads = 256;

template <class Real, int D, FusedMath Math>
__global__ void __launch_bounds__(max_block_threads, 2)
    integrate_trajectories_block(const TrajectoryKernelArgs<Real> args, const BlockLaunchPlan plan) {
    extern __shared__ double shared_memory[]; // the reduction slots (blockDim.x doubles), then the Reals
    const BlockTeam team{static_cast<int>(threadIdx.x), static_cast<int>(blockDim.x), shared_memory};
    Real* shared = reinterpret_cast<Real*>(shared_memory + blockDim.x);
    run_block_slot<Real, D, Math>(team, args, plan, static_cast<std::int64_t>(blockIdx.x), shared);
}

template <class Real, int D>
void launch(const TrajectoryKernelArgs<Real>& args, const BlockLaunchPlan& plan, cudaStream_t stream) {
    const auto blocks = static_cast<unsigned>(args.count);
    if (plan.math == FusedMath::tensor)
        integrate_trajectories_block<Real, D, FusedMath::tensor>
            <<<blocks, plan.threads_per_block, plan.shared_bytes, stream>>>(args, plan);
    else
        integrate_trajectories_block<Real, D, FusedMath::fma>
            <<<blocks, plan.threads_per_block, plan.shared_bytes, stream>>>(args, plan);
}

template <class Real, FusedMath Math>
void allow(int limit) {
    COLLAPSE_CUDA_CHECK(cudaFuncSetAttribute(integrate_trajectories_block<Real, 8, Math>,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize, limit));
    COLLAPSE_CUDA_CHECK(cudaFuncSetAttribute(integrate_trajectories_block<Real, 16, Math>,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize, limit));
    COLLAPSE_CUDA_CHECK(cudaFuncSetAttribute(integrate_trajectories_block<Real, 32, Math>,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize, limit));
    COLLAPSE_CUDA_CHECK(cudaFuncSetAttribute(integrate_trajectories_block<Real, 64, Math>,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize, limit));
}

} // namespace

template <class Real>
void launch_block_kernel(const TrajectoryKernelArgs<Real>& args, const BlockLaunchPlan& plan, cudaStream_t stream) {
    if (args.count <= 0) return;
    switch (plan.dim) {
    case 8: launch<Real, 8>(args, plan, stream); break;
    case 16: launch<Real, 16>(args, plan, stream); break;
    case 32: launch<Real, 32>(args, plan, stream); break;
    case 64: launch<Real, 64>(args, plan, stream); break;
    default: throw BackendError("the fused block kernel has no instantiation for d = " + std::to_string(plan.dim));
    }
    COLLAPSE_CUDA_CHECK(cudaGetLastError());
}

void allow_block_shared_memory(std::size_t bytes) {
    const int limit = static_cast<int>(bytes);
    allow<float, FusedMath::fma>(limit);
    allow<double, FusedMath::fma>(limit);
    allow<float, FusedMath::tensor>(limit);
    allow<double, FusedMath::tensor>(limit);
}

template void launch_block_kernel<float>(const TrajectoryKernelArgs<float>&, const BlockLaunchPlan&, cudaStream_t);
template void launch_block_kernel<double>(const TrajectoryKernelArgs<double>&, const BlockLaunchPlan&, cudaStream_t);

} // namespace collapse::cuda
