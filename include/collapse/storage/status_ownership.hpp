// Which file holds which trajectory when ownership is not declared up front.
// MPI rank files (docs/scaling.md) may hold any trajectory: rank 0 hands out
// chunks on request, so a file's share is only known from its statuses.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "collapse/storage/result_writer.hpp"

namespace collapse::storage {

// A maximal run [begin, end) of flat indices mapped to one file.
struct OwnedRun {
    std::size_t file = 0; // index into the inputs
    std::int64_t begin = 0, end = 0;
};

// statuses[f] is file f's /results/status in flat order (all the same length).
// Each trajectory with status >= 0 in exactly one file goes to that file;
// one with status -1 everywhere goes to the file of the run before it (file 0
// at the start), where it reads -1 too, so runs stay long. Throws
// StorageError naming both files and the flat index when a trajectory
// finished in two files. `names` (same length) are used in messages.
std::vector<OwnedRun> runs_by_status(const std::vector<std::vector<std::int8_t>>& statuses,
                                     const std::vector<std::string>& names);

// An MPI rank file declares shard index = rank, count = ranks, and the whole
// grid [0, size) as its range, which no static shard of a split (count > 1)
// can do: that is how merge tells the two apart.
bool is_rank_file(const ShardRange& range, std::int64_t grid_size);

} // namespace collapse::storage
