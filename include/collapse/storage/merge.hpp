// `collapse-sweep merge OUT.h5 SHARD.h5...`: one file whose datasets are HDF5
// virtual datasets over the shards' datasets, readable like a normal output.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace collapse::storage {

struct MergeReport {
    std::int64_t trajectories = 0; // grid size
    std::int64_t not_run = 0;      // status -1 in the merged view (unfinished shards)
};

// Checks that the shards share spec hash and grid and that their ranges cover
// [0, size) exactly once, then writes `out_path` (never clobbering it without
// `overwrite`). MPI rank files (is_rank_file, status_ownership.hpp) instead
// must be ranks 0..R-1 of one run, and each trajectory is mapped to the file
// where it finished (never two); unfinished ones read -1. The shard files must stay where they are, relative to
// out_path: the virtual datasets name them by relative path. Throws
// StorageError naming the problem (gap, overlap, mismatch, unclean shard).
MergeReport merge_shards(const std::string& out_path, const std::vector<std::string>& shard_paths, bool overwrite);

} // namespace collapse::storage
