// Host-side planning of a warp-kernel launch (warp_kernel.hpp): plain C++, so
// the host tests that emulate a warp use the same plan, for any device's limits.
#include "warp_kernel.hpp"

#include <algorithm>

namespace collapse::cuda {
namespace {

// The runtime keeps 1 KiB of each block's shared memory for itself (sm_80 on).
constexpr std::size_t reserved_shared_bytes_per_block = 1024;
// A multiprocessor runs at most 32 blocks at once (sm_80 to sm_90).
constexpr int max_blocks_per_multiprocessor = 32;

std::size_t round_to_four(std::size_t reals) { return (reals + 3) / 4 * 4; }

// Blocks of `warps` warps with `block_bytes` of shared memory each that fit on
// one multiprocessor at once (0 when one block does not fit a block's limit).
int blocks_that_fit(const DeviceLimits& limits, int warps, std::size_t block_bytes) {
    if (block_bytes > limits.shared_bytes_per_block_optin) return 0;
    const int by_threads = limits.max_threads_per_multiprocessor / (warps * warp_lanes);
    const auto by_shared = static_cast<int>(limits.shared_bytes_per_multiprocessor /
                                            (block_bytes + reserved_shared_bytes_per_block));
    return std::min({by_threads, by_shared, max_blocks_per_multiprocessor});
}

} // namespace

bool prefer_warp_kernel(const TrajectoryDims& dims) {
    return static_cast<long>(dims.samples) * dims.dim <= warp_kernel_max_entries;
}

template <class Real>
WarpLaunchPlan plan_warp_launch(const TrajectoryTask<Real>* tasks, std::int64_t count, const DeviceLimits& limits,
                                bool state_in_shared_memory) {
    WarpLaunchPlan plan;
    if (count <= 0) return plan;
    std::size_t resident = 0, streamed = 0, state = 0;
    for (std::int64_t b = 0; b < count; ++b) {
        if (!team_indices_fit_int(tasks[b].dims)) return plan;
        const TeamWorkspaceLayout layout(tasks[b].dims);
        resident = std::max(resident, layout.resident_size);
        streamed = std::max(streamed, layout.streamed_size);
        state = std::max(state, StateLayout(tasks[b].dims).size);
    }
    // Fewer warps per block only when one block of four would not fit.
    const auto place = [&](std::size_t streamed_reals, std::size_t state_reals, int& warps) {
        const std::size_t slice = round_to_four(resident + streamed_reals + state_reals);
        for (warps = warps_per_warp_block; warps >= 1; warps /= 2)
            if (blocks_that_fit(limits, warps, warps * slice * sizeof(Real)) > 0) return slice;
        warps = 0;
        return slice;
    };
    const auto resident_warps = [&](std::size_t slice, int warps) {
        return warps * blocks_that_fit(limits, warps, warps * slice * sizeof(Real));
    };
    int warps = 0;
    std::size_t slice = place(0, 0, warps);
    if (warps == 0) return plan;
    plan.resident_reals = resident;
    if (state_in_shared_memory) {
        int with_state = 0;
        const std::size_t state_slice = place(0, state, with_state);
        if (with_state > 0 && resident_warps(state_slice, with_state) >= min_resident_warps_per_multiprocessor) {
            plan.shared_state_reals = state;
            slice = state_slice;
            warps = with_state;
            int with_rows = 0;
            const std::size_t rows_slice = place(streamed, state, with_rows);
            if (streamed > 0 && with_rows > 0 &&
                resident_warps(rows_slice, with_rows) >= min_resident_warps_per_multiprocessor) {
                plan.shared_streamed_reals = streamed;
                slice = rows_slice;
                warps = with_rows;
            }
        }
    }
    plan.warps_per_block = warps;
    plan.slice_reals = slice;
    plan.shared_bytes = static_cast<std::size_t>(warps) * slice * sizeof(Real);
    plan.blocks_per_multiprocessor = blocks_that_fit(limits, warps, plan.shared_bytes);
    return plan;
}

template WarpLaunchPlan plan_warp_launch<float>(const TrajectoryTask<float>*, std::int64_t, const DeviceLimits&, bool);
template WarpLaunchPlan plan_warp_launch<double>(const TrajectoryTask<double>*, std::int64_t, const DeviceLimits&,
                                                 bool);

} // namespace collapse::cuda
