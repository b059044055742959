#include "collapse/storage/flat_boxes.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace collapse::storage {

namespace {

std::int64_t round_down(std::int64_t value, std::int64_t unit) { return value / unit * unit; }
std::int64_t round_up(std::int64_t value, std::int64_t unit) { return (value + unit - 1) / unit * unit; }

// The box of flat indices [from, to) where both are multiples of
// stride[level] and lie in one block of stride[level - 1]: full extent in the
// dimensions after `level`, a single index in those before it.
GridBox level_box(const std::vector<std::int64_t>& shape, const std::vector<std::int64_t>& stride, std::size_t level,
                  std::int64_t from, std::int64_t to) {
    GridBox box;
    box.start.resize(shape.size());
    box.count.resize(shape.size());
    std::int64_t rest = from;
    for (std::size_t d = 0; d < shape.size(); ++d) {
        box.start[d] = rest / stride[d];
        rest %= stride[d];
        box.count[d] = d < level ? 1 : (d == level ? (to - from) / stride[d] : shape[d]);
    }
    return box;
}

} // namespace

std::vector<GridBox> flat_range_boxes(const std::vector<std::int64_t>& shape, std::int64_t begin, std::int64_t end) {
    std::int64_t size = 1;
    for (std::int64_t length : shape) size *= length;
    if (begin < 0 || end > size || begin > end)
        throw std::out_of_range("flat range [" + std::to_string(begin) + ", " + std::to_string(end) +
                                ") outside a grid of " + std::to_string(size));
    std::vector<GridBox> boxes;
    if (begin == end) return boxes;
    const std::size_t rank = shape.size();
    std::vector<std::int64_t> stride(rank, 1); // flat distance of one step along each dimension
    for (std::size_t d = rank - 1; d-- > 0;) stride[d] = stride[d + 1] * shape[d + 1];

    // Climb: peel partial blocks off the front until `position` is aligned to
    // ever coarser dimensions, then descend: take the largest aligned blocks
    // that still end before `end`.
    std::int64_t position = begin;
    for (std::size_t level = rank - 1; level >= 1; --level) {
        const std::int64_t target = std::min(round_up(position, stride[level - 1]), round_down(end, stride[level]));
        if (target > position) {
            boxes.push_back(level_box(shape, stride, level, position, target));
            position = target;
        }
        if (position % stride[level - 1] != 0) break; // `end` comes first: only finer levels remain
    }
    for (std::size_t level = 0; level < rank; ++level) {
        const std::int64_t target = round_down(end, stride[level]);
        if (target > position) {
            boxes.push_back(level_box(shape, stride, level, position, target));
            position = target;
        }
    }
    return boxes;
}

std::vector<std::pair<std::int64_t, std::int64_t>> consecutive_runs(const std::vector<std::int64_t>& sorted_indices) {
    std::vector<std::pair<std::int64_t, std::int64_t>> runs;
    for (std::int64_t index : sorted_indices) {
        if (!runs.empty() && runs.back().second == index) ++runs.back().second;
        else runs.emplace_back(index, index + 1);
    }
    return runs;
}

} // namespace collapse::storage
