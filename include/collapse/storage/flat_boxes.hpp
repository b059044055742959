// A contiguous range of row-major flat indices, seen as a set of rectangular
// boxes in the grid. Shards own such ranges and batches are mostly made of
// them, so both HDF5 selections and virtual-dataset mappings are built from
// these boxes instead of one element at a time.
#pragma once

#include <cstdint>
#include <vector>

namespace collapse::storage {

struct GridBox {
    std::vector<std::int64_t> start;
    std::vector<std::int64_t> count;
};

// The flat range [begin, end) of a row-major array of `shape` as at most
// 2 * rank - 1 disjoint boxes whose union is exactly the range, listed in
// increasing flat order. An empty range gives no boxes.
std::vector<GridBox> flat_range_boxes(const std::vector<std::int64_t>& shape, std::int64_t begin, std::int64_t end);

// Sorted, unique flat indices grouped into maximal runs [begin, end).
std::vector<std::pair<std::int64_t, std::int64_t>> consecutive_runs(const std::vector<std::int64_t>& sorted_indices);

} // namespace collapse::storage
