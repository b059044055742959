#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <span>

#include "collapse/storage/error.hpp"
#include "synthetic.hpp"

namespace collapse::storage::testing {
namespace {

std::string message_of(const std::function<void()>& action) {
    try {
        action();
    } catch (const StorageError& error) {
        return error.what();
    }
    return "";
}

TEST(StorageResume, RejectsADifferentSpecAndNamesWhatDiffers) {
    const SpecOptions options = two_axis_options();
    const SweepSpec spec = make_spec(options);
    const std::string path = temporary_directory("resume_mismatch") + "/out.h5";
    ResultWriter::create(path, spec, Grid(spec), test_provenance(), {}, false)->close();
    std::vector<std::int8_t> status;

    SweepSpec other_text = spec;
    other_text.source_text += "# edited\n";
    const std::string text_error = message_of([&] {
        ResultWriter::resume(path, other_text, Grid(other_text), test_provenance(), status);
    });
    EXPECT_NE(text_error.find("different spec"), std::string::npos) << text_error;
    EXPECT_NE(text_error.find("spec text differs"), std::string::npos) << text_error;

    SweepSpec other_overrides = spec;
    other_overrides.overrides = {"collapse.threshold=0.1"};
    const std::string override_error = message_of([&] {
        ResultWriter::resume(path, other_overrides, Grid(other_overrides), test_provenance(), status);
    });
    EXPECT_NE(override_error.find("overrides differ"), std::string::npos) << override_error;
    EXPECT_NE(override_error.find("collapse.threshold=0.1"), std::string::npos) << override_error;

    EXPECT_NE(message_of([&] {
                  ResultWriter::resume(path + ".missing", spec, Grid(spec), test_provenance(), status);
              }).find("no such file"),
              std::string::npos);
}

TEST(StorageResume, ReturnsStatusesAndFinishingMatchesAnUninterruptedRun) {
    const SweepSpec spec = make_spec(two_axis_options());
    const Grid grid(spec);
    const std::string directory = temporary_directory("resume");
    const std::vector<std::int64_t> order = shuffled_indices(grid.size(), 5);

    auto reference = ResultWriter::create(directory + "/reference.h5", spec, grid, test_provenance(), {}, false);
    write_in_batches(*reference, spec, order, 4);
    for (std::int64_t seed = 0; seed < spec.seeds; ++seed) reference->write_seed_data(make_seed_data(spec, seed));
    reference->close();

    const std::string path = directory + "/resumed.h5";
    auto first = ResultWriter::create(path, spec, grid, test_provenance(), {}, false);
    write_in_batches(*first, spec, {order.begin(), order.begin() + 5}, 3);
    first->close();

    std::vector<std::int8_t> status;
    auto resumed = ResultWriter::resume(path, spec, grid, {"resume", "test2", "other device"}, status);
    ASSERT_EQ(status.size(), 12u);
    std::vector<std::int64_t> remaining;
    for (std::size_t flat = 0; flat < status.size(); ++flat) {
        const bool written = std::find(order.begin(), order.begin() + 5, static_cast<std::int64_t>(flat)) !=
                             order.begin() + 5;
        EXPECT_EQ(status[flat] >= 0, written) << flat;
        if (status[flat] < 0) remaining.push_back(static_cast<std::int64_t>(flat));
    }
    EXPECT_EQ(resumed->shard().end, 12);
    write_in_batches(*resumed, spec, remaining, 2);
    for (std::int64_t seed = 0; seed < spec.seeds; ++seed) resumed->write_seed_data(make_seed_data(spec, seed));
    resumed->close();

    const ResultReader done(path);
    EXPECT_EQ(compare_files(done, ResultReader(directory + "/reference.h5"), dataset_paths(spec)), "");
    EXPECT_NE(done.attribute("resume_history").find("backend=test2"), std::string::npos);
}

// The block-wise resume (what `run --resume` uses) reads exactly the file's
// shard of /results/status, in order and without gaps, whatever the block size.
TEST(StorageResume, StatusBlocksCoverTheShardInOrderAndMatchTheWholeRead) {
    const SweepSpec spec = make_spec(two_axis_options());
    const Grid grid(spec);
    ASSERT_EQ(grid.size(), 12);
    const std::string path = temporary_directory("resume_blocks") + "/shard.h5";
    auto writer = ResultWriter::create(path, spec, grid, test_provenance(), ShardRange{1, 3, 3, 11}, false);
    write_in_batches(*writer, spec, {3, 6, 7, 10}, 2);
    writer->close();

    std::vector<std::int8_t> whole;
    ResultWriter::resume(path, spec, grid, test_provenance(), whole)->close();
    ASSERT_EQ(whole.size(), 12u);
    for (const std::int64_t flat : {3, 6, 7, 10}) EXPECT_GE(whole[static_cast<std::size_t>(flat)], 0) << flat;
    for (const std::int64_t flat : {4, 5, 8, 9}) EXPECT_EQ(whole[static_cast<std::size_t>(flat)], -1) << flat;
    const std::vector<std::int8_t> owned(whole.begin() + 3, whole.begin() + 11);

    for (const std::int64_t block_size : {std::int64_t{1}, std::int64_t{3}, std::int64_t{5}, std::int64_t{1} << 20}) {
        std::vector<std::int8_t> seen;
        std::int64_t next = 3;
        int blocks = 0;
        ResultWriter::resume(
            path, spec, grid, test_provenance(),
            [&](std::int64_t first, std::span<const std::int8_t> block) {
                EXPECT_EQ(first, next);
                EXPECT_LE(static_cast<std::int64_t>(block.size()), block_size);
                next = first + static_cast<std::int64_t>(block.size());
                seen.insert(seen.end(), block.begin(), block.end());
                ++blocks;
            },
            block_size)
            ->close();
        EXPECT_EQ(next, 11) << block_size;
        EXPECT_EQ(blocks, (8 + block_size - 1) / block_size) << block_size;
        EXPECT_EQ(seen, owned) << block_size;
    }
}

TEST(StorageResume, RefusesAFileAnotherWriterStillOwns) {
    const SweepSpec spec = make_spec(two_axis_options());
    const Grid grid(spec);
    const std::string path = temporary_directory("resume_live") + "/out.h5";
    auto writer = ResultWriter::create(path, spec, grid, test_provenance(), {}, false);
    std::vector<std::int8_t> status;
    const std::string error = message_of([&] { ResultWriter::resume(path, spec, grid, test_provenance(), status); });
    EXPECT_NE(error.find("being written by another process"), std::string::npos) << error;
    writer->close();
    EXPECT_NO_THROW(ResultWriter::resume(path, spec, grid, test_provenance(), status)->close());
}

} // namespace
} // namespace collapse::storage::testing
