#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "collapse/storage/error.hpp"
#include "collapse/storage/merge.hpp"
#include "synthetic.hpp"

namespace collapse::storage::testing {
namespace {

namespace fs = std::filesystem;

struct ShardedRun {
    SweepSpec spec;
    std::string directory;
    std::vector<std::string> shards;
};

// The grid split into uneven flat ranges, each shard writing only its own.
ShardedRun write_shards(const std::string& name, const std::vector<std::int64_t>& cuts) {
    SpecOptions options = two_axis_options();
    options.seeds = 5; // 30 trajectories
    ShardedRun run{make_spec(options), temporary_directory(name), {}};
    const Grid grid(run.spec);
    auto reference = ResultWriter::create(run.directory + "/single.h5", run.spec, grid, test_provenance(), {}, false);
    write_in_batches(*reference, run.spec, shuffled_indices(grid.size(), 1), 4);
    for (std::int64_t seed = 0; seed < run.spec.seeds; ++seed) reference->write_seed_data(make_seed_data(run.spec, seed));
    reference->close();
    fs::create_directories(run.directory + "/shards");
    const auto count = static_cast<std::int64_t>(cuts.size()) - 1;
    for (std::int64_t i = 0; i < count; ++i) {
        const std::string path = run.directory + "/shards/part" + std::to_string(i) + ".h5";
        const ShardRange range{i, count, cuts[static_cast<std::size_t>(i)], cuts[static_cast<std::size_t>(i) + 1]};
        auto writer = ResultWriter::create(path, run.spec, grid, test_provenance(), range, false);
        std::vector<std::int64_t> owned;
        for (std::int64_t flat : shuffled_indices(grid.size(), 2))
            if (flat >= range.begin && flat < range.end) owned.push_back(flat);
        write_in_batches(*writer, run.spec, owned, 3);
        for (std::int64_t seed = 0; seed < run.spec.seeds; ++seed) writer->write_seed_data(make_seed_data(run.spec, seed));
        writer->close();
        run.shards.push_back(path);
    }
    return run;
}

TEST(StorageMerge, ThreeShardsMergeToTheSameDataAsOneFile) {
    const ShardedRun run = write_shards("merge", {0, 7, 19, 30});
    const std::string merged = run.directory + "/merged.h5";
    const MergeReport report = merge_shards(merged, {run.shards[2], run.shards[0], run.shards[1]}, false);
    EXPECT_EQ(report.trajectories, 30);
    EXPECT_EQ(report.not_run, 0);
    const ResultReader single(run.directory + "/single.h5");
    {
        const ResultReader reader(merged);
        EXPECT_EQ(compare_files(reader, single, dataset_paths(run.spec)), "");
        EXPECT_EQ(reader.axis_names(), single.axis_names());
        // Every coordinate, the counting ones copied chunk by chunk as stored, in each group.
        EXPECT_EQ(reader.axis_values(), single.axis_values());
        for (const char* scale : {"/traces/seed", "/final/seed", "/final/class", "/final/component", "/traces/step"})
            EXPECT_EQ(reader.read_integers(scale), single.read_integers(scale)) << scale;
        EXPECT_EQ(reader.read_integers("/final/seed"), (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
        EXPECT_EQ(reader.shard().end, 30);
        EXPECT_EQ(reader.attribute("merged_shards"), "shards/part0.h5\nshards/part1.h5\nshards/part2.h5");
        EXPECT_EQ(reader.spec_sha256(), single.spec_sha256());
    }
    std::vector<std::int8_t> status;
    EXPECT_THROW(ResultWriter::resume(merged, run.spec, Grid(run.spec), test_provenance(), status), StorageError);

    // The virtual datasets name their shards relative to the merged file, so
    // neither the working directory nor moving the whole folder matters.
    const fs::path previous = fs::current_path();
    fs::current_path("/");
    EXPECT_EQ(compare_files(ResultReader(merged), single, dataset_paths(run.spec)), "");
    const std::string moved = temporary_directory("merge_moved") + "/copy";
    fs::copy(run.directory, moved, fs::copy_options::recursive);
    fs::remove_all(run.directory + "/shards");
    EXPECT_EQ(compare_files(ResultReader(moved + "/merged.h5"), single, dataset_paths(run.spec)), "");
    fs::current_path(previous);

    EXPECT_THROW(merge_shards(moved + "/merged.h5", {moved + "/shards/part0.h5"}, false), StorageError);
}

std::string merge_error(const std::string& out, const std::vector<std::string>& shards) {
    try {
        merge_shards(out, shards, true);
    } catch (const StorageError& error) {
        return error.what();
    }
    return "";
}

TEST(StorageMerge, RejectsGapsOverlapsAndForeignShards) {
    const ShardedRun run = write_shards("merge_errors", {0, 10, 20, 30});
    const std::string out = run.directory + "/merged.h5";
    const std::string gap = merge_error(out, {run.shards[0], run.shards[2]});
    EXPECT_NE(gap.find("flat indices [10, 20) are in no shard"), std::string::npos) << gap;
    const std::string tail = merge_error(out, {run.shards[0], run.shards[1]});
    EXPECT_NE(tail.find("[20, 30) are in no shard"), std::string::npos) << tail;
    const std::string overlap = merge_error(out, {run.shards[0], run.shards[1], run.shards[1], run.shards[2]});
    EXPECT_NE(overlap.find("overlap on flat indices [10, 20)"), std::string::npos) << overlap;

    const ShardedRun other = write_shards("merge_other", {0, 30});
    SpecOptions options = two_axis_options();
    options.seeds = 5;
    SweepSpec different = make_spec(options);
    different.overrides = {"collapse.threshold=0.01"};
    const std::string foreign_path = other.directory + "/foreign.h5";
    ResultWriter::create(foreign_path, different, Grid(different), test_provenance(), {0, 2, 10, 20}, false)->close();
    const std::string foreign = merge_error(out, {run.shards[0], foreign_path, run.shards[2]});
    EXPECT_NE(foreign.find("different spec"), std::string::npos) << foreign;
    EXPECT_FALSE(fs::exists(out));
}

TEST(StorageMerge, UnfinishedShardsMergeWithTheirGapsReported) {
    SpecOptions options = two_axis_options();
    const SweepSpec spec = make_spec(options);
    const Grid grid(spec);
    const std::string directory = temporary_directory("merge_partial");
    auto a = ResultWriter::create(directory + "/a.h5", spec, grid, test_provenance(), {0, 2, 0, 6}, false);
    a->write_batch(make_batch(spec, {0, 1, 2}));
    a->close();
    auto b = ResultWriter::create(directory + "/b.h5", spec, grid, test_provenance(), {1, 2, 6, 12}, false);
    b->write_batch(make_batch(spec, {11}));
    b->close();
    const MergeReport report = merge_shards(directory + "/m.h5", {directory + "/a.h5", directory + "/b.h5"}, false);
    EXPECT_EQ(report.not_run, 8);
    EXPECT_EQ(check_finished_trajectories(ResultReader(directory + "/m.h5"), spec), "");
}

} // namespace
} // namespace collapse::storage::testing
