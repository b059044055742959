// Merge of MPI rank files: ownership from statuses instead of declared ranges.
#include <gtest/gtest.h>

#include <filesystem>

#include "collapse/storage/error.hpp"
#include "collapse/storage/merge.hpp"
#include "collapse/storage/status_ownership.hpp"
#include "synthetic.hpp"

namespace collapse::storage::testing {
namespace {

namespace fs = std::filesystem;

std::string ownership_error(const std::vector<std::vector<std::int8_t>>& statuses) {
    try {
        runs_by_status(statuses, {"a.h5", "b.h5", "c.h5"});
    } catch (const StorageError& error) {
        return error.what();
    }
    return "";
}

TEST(StatusOwnership, MaximalRunsWithUnfinishedJoiningThePreviousRun) {
    // file 0 finished 1, 2; file 1 finished 3, 4, 6; 0, 5 and 7 are nowhere.
    const std::vector<std::vector<std::int8_t>> statuses{{-1, 0, 1, -1, -1, -1, -1, -1}, {-1, -1, -1, 2, 0, -1, 1, -1}};
    const std::vector<OwnedRun> runs = runs_by_status(statuses, {"a.h5", "b.h5"});
    ASSERT_EQ(runs.size(), 2u);
    EXPECT_EQ(runs[0].file, 0u);
    EXPECT_EQ(runs[0].begin, 0);
    EXPECT_EQ(runs[0].end, 3);
    EXPECT_EQ(runs[1].file, 1u);
    EXPECT_EQ(runs[1].begin, 3);
    EXPECT_EQ(runs[1].end, 8);
}

TEST(StatusOwnership, RejectsTrajectoriesFinishedTwiceAndLengthMismatch) {
    const std::string twice = ownership_error({{0, -1, 1}, {-1, -1, -1}, {-1, -1, 2}});
    EXPECT_NE(twice.find("trajectory 2 finished in both a.h5 and c.h5"), std::string::npos) << twice;
    const std::string lengths = ownership_error({{0, -1}, {-1, -1, -1}});
    EXPECT_NE(lengths.find("b.h5 has 3 trajectories"), std::string::npos) << lengths;
    EXPECT_TRUE(is_rank_file(ShardRange{1, 3, 0, 30}, 30));
    EXPECT_FALSE(is_rank_file(ShardRange{0, 1, 0, 30}, 30)); // a whole-grid single run
    EXPECT_FALSE(is_rank_file(ShardRange{1, 3, 10, 20}, 30)); // a static shard
}

struct RankRun {
    SweepSpec spec;
    std::string directory;
    std::vector<std::string> files;
};

// Three rank files of a 30-trajectory grid, chunks dealt round-robin except
// `unfinished`, which no rank ran.
RankRun write_rank_files(const std::string& name, const std::vector<std::int64_t>& unfinished) {
    SpecOptions options = two_axis_options();
    options.seeds = 5;
    RankRun run{make_spec(options), temporary_directory(name), {}};
    const Grid grid(run.spec);
    constexpr std::int64_t ranks = 3, chunk = 4;
    for (std::int64_t rank = 0; rank < ranks; ++rank) {
        const std::string path = run.directory + "/out.rank-" + std::to_string(rank) + "-of-3.h5";
        auto writer = ResultWriter::create(path, run.spec, grid, test_provenance(), {rank, ranks, 0, grid.size()}, false);
        std::vector<std::int64_t> mine;
        for (std::int64_t flat = 0; flat < grid.size(); ++flat)
            if ((flat / chunk) % ranks == rank && std::find(unfinished.begin(), unfinished.end(), flat) == unfinished.end())
                mine.push_back(flat);
        write_in_batches(*writer, run.spec, mine, 3);
        for (std::int64_t seed = 0; seed < run.spec.seeds; ++seed) writer->write_seed_data(make_seed_data(run.spec, seed));
        writer->close();
        run.files.push_back(path);
    }
    return run;
}

TEST(StatusOwnership, RankFilesMergeToTheSingleFileData) {
    const RankRun run = write_rank_files("rank_merge", {5, 6, 29});
    const std::string merged = run.directory + "/out.h5";
    const MergeReport report = merge_shards(merged, {run.files[2], run.files[0], run.files[1]}, false);
    EXPECT_EQ(report.trajectories, 30);
    EXPECT_EQ(report.not_run, 3);
    const ResultReader reader(merged);
    EXPECT_EQ(check_finished_trajectories(reader, run.spec), "");
    const std::vector<std::int8_t> status = reader.status();
    for (std::int64_t flat : {5, 6, 29}) EXPECT_EQ(status[static_cast<std::size_t>(flat)], -1) << flat;
    EXPECT_EQ(std::count_if(status.begin(), status.end(), [](std::int8_t s) { return s >= 0; }), 27);
}

std::string merge_error(const std::string& out, const std::vector<std::string>& files) {
    try {
        merge_shards(out, files, true);
    } catch (const StorageError& error) {
        return error.what();
    }
    return "";
}

TEST(StatusOwnership, RejectsMissingDuplicateOverlappingAndMixedFiles) {
    const RankRun run = write_rank_files("rank_errors", {});
    const std::string out = run.directory + "/out.h5";
    const std::string missing = merge_error(out, {run.files[0], run.files[2]});
    EXPECT_NE(missing.find("rank 1 of 3 is missing"), std::string::npos) << missing;
    const std::string duplicate = merge_error(out, {run.files[0], run.files[1], run.files[1]});
    EXPECT_NE(duplicate.find("are both rank 1"), std::string::npos) << duplicate;

    // A rank file that also finished rank 0's trajectory 0.
    const Grid grid(run.spec);
    const std::string rogue = run.directory + "/rogue/out.rank-1-of-3.h5";
    fs::create_directories(run.directory + "/rogue");
    auto writer = ResultWriter::create(rogue, run.spec, grid, test_provenance(), {1, 3, 0, grid.size()}, false);
    writer->write_batch(make_batch(run.spec, {0, 4}));
    writer->close();
    const std::string overlap = merge_error(out, {run.files[0], rogue, run.files[2]});
    EXPECT_NE(overlap.find("trajectory 0 finished in both"), std::string::npos) << overlap;

    const std::string static_path = run.directory + "/static.h5";
    ResultWriter::create(static_path, run.spec, grid, test_provenance(), {0, 2, 0, 15}, false)->close();
    const std::string mixed = merge_error(out, {run.files[0], run.files[1], static_path});
    EXPECT_NE(mixed.find("cannot mix MPI rank files"), std::string::npos) << mixed;

    const std::string other_count = run.directory + "/other.h5";
    ResultWriter::create(other_count, run.spec, grid, test_provenance(), {1, 2, 0, grid.size()}, false)->close();
    const std::string count = merge_error(out, {run.files[0], other_count});
    EXPECT_NE(count.find("2-rank run"), std::string::npos) << count;
    EXPECT_FALSE(fs::exists(out));
}

} // namespace
} // namespace collapse::storage::testing
