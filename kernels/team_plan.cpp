// Host-side planning of a team-kernel launch (team_kernel.hpp): plain C++,
// so the host tests that emulate a block use the same plan.
#include "team_kernel.hpp"

#include <algorithm>

namespace collapse::cuda {

std::size_t team_shared_bytes(int threads_per_block, std::size_t resident_reals, std::size_t state_reals,
                              std::size_t real_bytes) {
    return static_cast<std::size_t>(threads_per_block) * sizeof(double) + (resident_reals + state_reals) * real_bytes;
}

int team_threads_for(const TrajectoryDims& dims) {
    const long entries = static_cast<long>(dims.samples) * dims.dim;
    int threads = 32;
    while (threads < 256 && entries / (2L * threads) >= 8) threads *= 2;
    return threads;
}

// The runtime keeps 1 KiB of each block's shared memory for itself
// (sharedMemPerBlockOptin already leaves it out; the per-multiprocessor total does not).
constexpr std::size_t reserved_shared_bytes_per_block = 1024;

template <class Real>
TeamLaunchPlan plan_team_launch(const TrajectoryTask<Real>* tasks, std::int64_t count, const DeviceLimits& limits,
                                bool state_in_shared_memory) {
    const std::size_t shared_limit_bytes = limits.shared_bytes_per_block_optin;
    TeamLaunchPlan plan;
    if (count <= 0) return plan;
    std::size_t resident = 0, state = 0;
    for (std::int64_t b = 0; b < count; ++b) {
        resident = std::max(resident, TeamWorkspaceLayout(tasks[b].dims).resident_size);
        state = std::max(state, StateLayout(tasks[b].dims).size);
    }
    // Shapes differ only in h within a batch, so N d (and the team size) is common.
    const int threads = team_threads_for(tasks[0].dims);
    if (threads > limits.max_threads_per_block) return plan;
    if (team_shared_bytes(threads, resident, 0, sizeof(Real)) > shared_limit_bytes) return plan;
    plan.threads_per_block = threads;
    plan.resident_reals = resident;
    if (state_in_shared_memory && team_shared_bytes(threads, resident, state, sizeof(Real)) <= shared_limit_bytes)
        plan.shared_state_reals = state;
    plan.shared_bytes = team_shared_bytes(threads, resident, plan.shared_state_reals, sizeof(Real));
    const auto by_shared = static_cast<int>(limits.shared_bytes_per_multiprocessor /
                                            (plan.shared_bytes + reserved_shared_bytes_per_block));
    plan.blocks_per_multiprocessor = std::max(1, std::min(by_shared, limits.max_threads_per_multiprocessor / threads));
    return plan;
}

template TeamLaunchPlan plan_team_launch<float>(const TrajectoryTask<float>*, std::int64_t, const DeviceLimits&, bool);
template TeamLaunchPlan plan_team_launch<double>(const TrajectoryTask<double>*, std::int64_t, const DeviceLimits&, bool);

} // namespace collapse::cuda
