// The warp-per-trajectory kernel (warp_kernel.hpp): every warp of a block is a
// team that takes trajectories from the batch's work queue and integrates
// each with run_warp_slot, its buffers in its own slice of shared memory.
#include "cuda_check.hpp"
#include "warp_kernel.hpp"

#include "collapse/integrators/gradient_descent.hpp"
#include "collapse/integrators/runge_kutta4.hpp"
#include "collapse/model/warp_team.hpp"

namespace collapse::cuda {
namespace {

constexpr unsigned full_warp = 0xffffffffu;

// A warp as a team: __syncwarp orders the lanes' shared-memory accesses, and
// reductions are butterflies of register shuffles (model/warp_team.hpp).
struct WarpTeam {
    int rank;
    static constexpr int size = warp_lanes;
    __device__ void sync() const { __syncwarp(full_warp); }
    __device__ double sum(double value) const {
        return butterfly_reduce(rank, size, value, [](double v, int offset) { return __shfl_xor_sync(full_warp, v, offset); },
                                SumCombine{});
    }
    __device__ double min(double value) const {
        return butterfly_reduce(rank, size, value, [](double v, int offset) { return __shfl_xor_sync(full_warp, v, offset); },
                                MinCombine{});
    }
};

constexpr int warp_block_threads = warps_per_warp_block * warp_lanes;

// Three blocks (12 warps) per multiprocessor: at most 168 registers a thread.
// ptxas (sm_90): 168 registers and no spill for gd, ~300 B of spill for rk4;
// four blocks (128 registers) would spill 144-546 B in every variant, and
// unbounded the team code takes 204-255 (docs/cuda-backend.md).
template <class Real, class Integrator>
__global__ void __launch_bounds__(warp_block_threads, 3) integrate_trajectories_warp(const TrajectoryKernelArgs<Real> args,
                                                                                        const WarpLaunchPlan plan) {
    extern __shared__ double shared_memory[];
    const int warp = static_cast<int>(threadIdx.x) / warp_lanes;
    const WarpTeam team{static_cast<int>(threadIdx.x) % warp_lanes};
    Real* slice = reinterpret_cast<Real*>(shared_memory) + static_cast<std::size_t>(warp) * plan.slice_reals;
    for (;;) {
        unsigned long long taken = 0;
        if (team.rank == 0) taken = atomicAdd(args.next_slot, 1ULL);
        const auto slot = static_cast<std::int64_t>(__shfl_sync(full_warp, taken, 0));
        if (slot >= args.count) return;
        run_warp_slot<Real, Integrator>(team, args, plan, slot, slice);
    }
}

template <class Real, class Integrator>
void launch(const TrajectoryKernelArgs<Real>& args, const WarpLaunchPlan& plan, int multiprocessors, cudaStream_t stream) {
    const int threads = plan.warps_per_block * warp_lanes;
    std::int64_t blocks = (args.count + plan.warps_per_block - 1) / plan.warps_per_block;
    int resident_blocks = 0;
    COLLAPSE_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
        &resident_blocks, integrate_trajectories_warp<Real, Integrator>, threads, plan.shared_bytes));
    if (resident_blocks > 0) blocks = std::min<std::int64_t>(blocks, static_cast<std::int64_t>(resident_blocks) * multiprocessors);
    COLLAPSE_CUDA_CHECK(cudaMemsetAsync(args.next_slot, 0, sizeof(unsigned long long), stream));
    integrate_trajectories_warp<Real, Integrator>
        <<<static_cast<unsigned>(blocks), threads, plan.shared_bytes, stream>>>(args, plan);
}

template <class Real, class Integrator>
void allow(std::size_t bytes) {
    COLLAPSE_CUDA_CHECK(cudaFuncSetAttribute(integrate_trajectories_warp<Real, Integrator>,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
}

} // namespace

template <class Real>
void launch_warp_kernel(const TrajectoryKernelArgs<Real>& args, const WarpLaunchPlan& plan, IntegratorMethod method,
                        int multiprocessors, cudaStream_t stream) {
    if (args.count <= 0) return;
    if (method == IntegratorMethod::rk4) launch<Real, RungeKutta4>(args, plan, multiprocessors, stream);
    else launch<Real, GradientDescent>(args, plan, multiprocessors, stream);
    COLLAPSE_CUDA_CHECK(cudaGetLastError());
}

void allow_warp_shared_memory(std::size_t bytes) {
    allow<float, GradientDescent>(bytes);
    allow<float, RungeKutta4>(bytes);
    allow<double, GradientDescent>(bytes);
    allow<double, RungeKutta4>(bytes);
}

template void launch_warp_kernel<float>(const TrajectoryKernelArgs<float>&, const WarpLaunchPlan&, IntegratorMethod, int,
                                        cudaStream_t);
template void launch_warp_kernel<double>(const TrajectoryKernelArgs<double>&, const WarpLaunchPlan&, IntegratorMethod,
                                         int, cudaStream_t);

} // namespace collapse::cuda
