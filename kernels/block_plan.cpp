// Host-side planning of a fused block-kernel launch (block_kernel.hpp): plain
// C++, so the host tests that emulate a block use the same plan, for any
// device's limits.
#include "block_kernel.hpp"

#include <algorithm>

#include "environment_choice.hpp"
#include "team_kernel.hpp"

namespace collapse::cuda {
namespace {

// The runtime keeps 1 KiB of each block's shared memory for itself.
constexpr std::size_t reserved_shared_bytes_per_block = 1024;
// __launch_bounds__(256, 2) in block_kernel.cu: registers allow two blocks
// per multiprocessor; a tile that leaves room for fewer costs occupancy.
constexpr int register_blocks_per_multiprocessor = 2;

} // namespace

FusedMath fused_math_from_environment() {
    return environment_choice("COLLAPSE_CUDA_TENSOR_CORES", {"off", "on"}) == 0 ? FusedMath::fma : FusedMath::tensor;
}

bool block_kernel_supports(const TrajectoryDims& dims, IntegratorMethod method) {
    return method == IntegratorMethod::gd && !dims.teacher_student() && fused_block_dim_supported(dims.dim) &&
           team_indices_fit_int(dims);
}

std::size_t block_shared_bytes(int threads_per_block, std::size_t shared_reals, std::size_t real_bytes) {
    return static_cast<std::size_t>(threads_per_block) * sizeof(double) + shared_reals * real_bytes;
}

template <class Real>
BlockLaunchPlan plan_block_launch(const TrajectoryTask<Real>* tasks, std::int64_t count, IntegratorMethod method,
                                  const DeviceLimits& limits, FusedMath math) {
    BlockLaunchPlan plan;
    if (count <= 0) return plan;
    bool with_head = false;
    for (std::int64_t b = 0; b < count; ++b) {
        if (!block_kernel_supports(tasks[b].dims, method)) return plan;
        with_head = with_head || tasks[b].dims.head_dim > 0;
    }
    // Shapes differ only in h within a batch.
    const TrajectoryDims& dims = tasks[0].dims;
    const int threads = team_threads_for(dims);
    if (threads > limits.max_threads_per_block) return plan;
    const int samples_rounded = (dims.samples + 31) / 32 * 32;
    const int wanted_blocks = std::min(register_blocks_per_multiprocessor, limits.max_threads_per_multiprocessor / threads);
    for (int tile : {256, 128, 64, 32}) {
        // No larger than the block (a thread per sample in the per-sample phase) or N.
        if (tile > 32 && (tile > threads || tile > samples_rounded)) continue;
        const std::size_t reals = FusedBlockLayout(dims.classes, dims.dim, with_head, tile, sizeof(Real)).reals;
        const std::size_t bytes = block_shared_bytes(threads, reals, sizeof(Real));
        if (bytes > limits.shared_bytes_per_block_optin) continue;
        const auto by_shared =
            static_cast<int>(limits.shared_bytes_per_multiprocessor / (bytes + reserved_shared_bytes_per_block));
        const int blocks = std::max(1, std::min(by_shared, limits.max_threads_per_multiprocessor / threads));
        // The largest tile that fits, unless a smaller one keeps the blocks the registers allow.
        if (plan.threads_per_block == 0 || blocks >= wanted_blocks) {
            plan.threads_per_block = threads;
            plan.tile_samples = tile;
            plan.dim = dims.dim;
            plan.shared_reals = reals;
            plan.shared_bytes = bytes;
            plan.blocks_per_multiprocessor = blocks;
            plan.math = math == FusedMath::tensor && limits.compute_major >= 8 ? FusedMath::tensor : FusedMath::fma;
        }
        if (blocks >= wanted_blocks) break;
    }
    return plan;
}

template BlockLaunchPlan plan_block_launch<float>(const TrajectoryTask<float>*, std::int64_t, IntegratorMethod,
                                                  const DeviceLimits&, FusedMath);
template BlockLaunchPlan plan_block_launch<double>(const TrajectoryTask<double>*, std::int64_t, IntegratorMethod,
                                                   const DeviceLimits&, FusedMath);

} // namespace collapse::cuda
