#include "collapse/storage/status_ownership.hpp"

#include "collapse/storage/error.hpp"

namespace collapse::storage {

std::vector<OwnedRun> runs_by_status(const std::vector<std::vector<std::int8_t>>& statuses,
                                     const std::vector<std::string>& names) {
    if (statuses.empty()) throw StorageError("no files to take ownership from");
    const std::size_t size = statuses.front().size();
    for (std::size_t f = 1; f < statuses.size(); ++f)
        if (statuses[f].size() != size)
            throw StorageError(names[f] + " has " + std::to_string(statuses[f].size()) + " trajectories, " +
                               names.front() + " has " + std::to_string(size));
    std::vector<OwnedRun> runs;
    std::size_t previous_owner = 0;
    for (std::size_t flat = 0; flat < size; ++flat) {
        std::size_t owner = statuses.size(); // none yet
        for (std::size_t f = 0; f < statuses.size(); ++f) {
            if (statuses[f][flat] < 0) continue;
            if (owner != statuses.size())
                throw StorageError("trajectory " + std::to_string(flat) + " finished in both " + names[owner] +
                                   " and " + names[f] + " (the files overlap)");
            owner = f;
        }
        if (owner == statuses.size()) owner = previous_owner; // not run anywhere: -1 in that file too
        const auto index = static_cast<std::int64_t>(flat);
        if (!runs.empty() && runs.back().file == owner && runs.back().end == index) ++runs.back().end;
        else runs.push_back({owner, index, index + 1});
        previous_owner = owner;
    }
    return runs;
}

bool is_rank_file(const ShardRange& range, std::int64_t grid_size) {
    return range.count > 1 && range.begin == 0 && range.end == grid_size;
}

} // namespace collapse::storage
