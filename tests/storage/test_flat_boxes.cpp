#include <gtest/gtest.h>

#include "collapse/storage/flat_boxes.hpp"

namespace collapse::storage {
namespace {

std::int64_t flat_of(const std::vector<std::int64_t>& shape, const std::vector<std::int64_t>& index) {
    std::int64_t flat = 0;
    for (std::size_t d = 0; d < shape.size(); ++d) flat = flat * shape[d] + index[d];
    return flat;
}

// Every element of every box, in row-major order within the box.
std::vector<std::int64_t> box_elements(const std::vector<std::int64_t>& shape, const GridBox& box) {
    std::vector<std::int64_t> elements;
    std::vector<std::int64_t> offset(shape.size(), 0);
    while (true) {
        std::vector<std::int64_t> index(shape.size());
        for (std::size_t d = 0; d < shape.size(); ++d) index[d] = box.start[d] + offset[d];
        elements.push_back(flat_of(shape, index));
        std::size_t d = shape.size();
        while (d-- > 0) {
            if (++offset[d] < box.count[d]) break;
            offset[d] = 0;
        }
        if (d == static_cast<std::size_t>(-1)) break;
    }
    return elements;
}

TEST(FlatBoxes, EveryRangeOfSmallShapesIsCoveredExactlyAndInOrder) {
    const std::vector<std::vector<std::int64_t>> shapes = {{7}, {3, 4}, {2, 3, 4}, {2, 1, 3, 2}, {3, 2, 2, 3, 2}};
    for (const auto& shape : shapes) {
        std::int64_t size = 1;
        for (std::int64_t length : shape) size *= length;
        for (std::int64_t begin = 0; begin <= size; ++begin)
            for (std::int64_t end = begin; end <= size; ++end) {
                const std::vector<GridBox> boxes = flat_range_boxes(shape, begin, end);
                EXPECT_LE(boxes.size(), 2 * shape.size() - 1);
                std::vector<std::int64_t> covered;
                for (const GridBox& box : boxes) {
                    for (std::size_t d = 0; d < shape.size(); ++d) {
                        ASSERT_GE(box.count[d], 1);
                        ASSERT_LE(box.start[d] + box.count[d], shape[d]);
                    }
                    const auto elements = box_elements(shape, box);
                    covered.insert(covered.end(), elements.begin(), elements.end());
                }
                std::vector<std::int64_t> expected;
                for (std::int64_t i = begin; i < end; ++i) expected.push_back(i);
                ASSERT_EQ(covered, expected) << "range [" << begin << ", " << end << ") of rank " << shape.size();
            }
    }
}

TEST(FlatBoxes, RejectsRangesOutsideTheGrid) {
    EXPECT_THROW(flat_range_boxes({2, 3}, 0, 7), std::out_of_range);
    EXPECT_THROW(flat_range_boxes({2, 3}, 4, 3), std::out_of_range);
}

TEST(FlatBoxes, ConsecutiveRunsGroupSortedIndices) {
    using Runs = std::vector<std::pair<std::int64_t, std::int64_t>>;
    EXPECT_EQ(consecutive_runs({0, 1, 2, 5, 7, 8}), (Runs{{0, 3}, {5, 6}, {7, 9}}));
    EXPECT_TRUE(consecutive_runs({}).empty());
}

} // namespace
} // namespace collapse::storage
