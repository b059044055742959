#include <gtest/gtest.h>

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <numeric>
#include <set>

#include "collapse/scheduler/sweep_runner.hpp"
#include "collapse/storage/result_writer.hpp"
#include "scripted_backend.hpp"

namespace collapse {
namespace {

TEST(Shards, ParseAcceptsIOverNAndRejectsNonsense) {
    const ShardSelection shard = parse_shard("2/5");
    EXPECT_EQ(shard.index, 2);
    EXPECT_EQ(shard.count, 5);
    for (const char* bad : {"", "3", "5/5", "-1/4", "1/0", "a/b", "1/2/3", "1 /2"})
        EXPECT_THROW(parse_shard(bad), std::invalid_argument) << bad;
}

TEST(Shards, CoverTheGridExactlyOnce) {
    for (std::int64_t size : {1, 7, 100, 1001})
        for (std::int64_t count : {1, 2, 3, 8, 13}) {
            std::int64_t next = 0;
            for (std::int64_t index = 0; index < count; ++index) {
                const FlatRange range = shard_range(size, ShardSelection{index, count});
                EXPECT_EQ(range.begin, next);
                EXPECT_LE(range.end - range.begin, size / count + 1);
                next = range.end;
            }
            EXPECT_EQ(next, size);
        }
}

TEST(Pending, KeepsOnlyNotRunInsideTheRange) {
    const std::vector<std::int8_t> status{0, -1, 1, -1, -1, 2};
    EXPECT_EQ(pending_trajectories(FlatRange{1, 5}, status).indices(), (std::vector<std::int64_t>{1, 3, 4}));
    EXPECT_EQ(pending_trajectories(FlatRange{2, 4}, {}).indices(), (std::vector<std::int64_t>{2, 3}));
}

// Memory is O(runs of pending entries), not O(grid): a fresh grid of 10^9 is one range.
TEST(Pending, IsHeldAsRunsOfConsecutiveIndices) {
    const PendingSet fresh = pending_trajectories(FlatRange{0, 1'000'000'000}, {});
    EXPECT_EQ(fresh.size(), 1'000'000'000);
    EXPECT_EQ(fresh.ranges(), (std::vector<FlatRange>{{0, 1'000'000'000}}));

    const std::vector<std::int8_t> status{-1, -1, 0, 1, -1, 2, -1, -1, -1, 0};
    const PendingSet resumed = pending_trajectories(FlatRange{1, 10}, status);
    EXPECT_EQ(resumed.ranges(), (std::vector<FlatRange>{{1, 2}, {4, 5}, {6, 9}}));
    EXPECT_EQ(resumed.size(), 5);
    EXPECT_TRUE(pending_trajectories(FlatRange{2, 4}, status).empty());
    EXPECT_EQ(PendingSet::of({7, 8, 9, 3, 4, 12}).ranges(), (std::vector<FlatRange>{{7, 10}, {3, 5}, {12, 13}}));
}

// What `run --resume` builds from the status blocks the writer reads.
TEST(Pending, AddNotRunJoinsRunsAcrossBlocks) {
    const std::vector<std::int8_t> first_block{0, -1, -1}, second_block{-1, 1, -1};
    PendingSet pending;
    pending.add_not_run(10, first_block);
    pending.add_not_run(13, second_block);
    EXPECT_EQ(pending.ranges(), (std::vector<FlatRange>{{11, 14}, {15, 16}}));
    EXPECT_EQ(pending.size(), 4);
    EXPECT_THROW(pending.add_not_run(12, first_block), std::invalid_argument);
}

// take() slices across range boundaries exactly as the old flat list did.
TEST(Pending, TakeHandsOutConsecutiveSlicesAcrossRanges) {
    const PendingSet pending(std::vector<FlatRange>{{1, 2}, {4, 5}, {5, 5}, {6, 9}});
    PendingSet::Position at;
    std::vector<std::int64_t> slice{42};
    pending.take(at, 2, slice);
    EXPECT_EQ(slice, (std::vector<std::int64_t>{1, 4}));
    pending.take(at, 2, slice);
    EXPECT_EQ(slice, (std::vector<std::int64_t>{6, 7}));
    pending.take(at, 2, slice);
    EXPECT_EQ(slice, (std::vector<std::int64_t>{8}));
    pending.take(at, 2, slice);
    EXPECT_TRUE(slice.empty());
}

// Marks every trajectory collapsed and counts calls.
class RecordingBackend : public testing::ScriptedBackend {
public:
    RecordingBackend() : ScriptedBackend(TrajectoryStatus::collapsed) {}
};

using testing::tiny_spec;

TEST(RunSweep, WritesEveryPendingTrajectoryOnceInOrder) {
    const SweepSpec spec = tiny_spec(23);
    const Grid grid(spec);
    RecordingBackend backend;
    const PendingSet pending = pending_trajectories(FlatRange{0, grid.size()}, {});
    std::vector<std::int64_t> written;
    std::atomic<bool> stop{false};
    int progress_calls = 0;
    const SweepReport report = run_sweep(
        spec, grid, backend, pending, 5,
        [&](const BatchOutput& batch) { written.insert(written.end(), batch.flat_index.begin(), batch.flat_index.end()); },
        [&](const SweepProgress&) { ++progress_calls; }, stop);
    EXPECT_EQ(written, pending.indices());
    EXPECT_EQ(backend.batches, 5);
    EXPECT_EQ(progress_calls, 5);
    EXPECT_FALSE(report.interrupted);
    EXPECT_EQ(report.progress.status_counts[1], 23);
}

TEST(RunSweep, StopsBetweenBatchesAndWritesWhatFinished) {
    const SweepSpec spec = tiny_spec(20);
    const Grid grid(spec);
    RecordingBackend backend;
    const PendingSet pending = pending_trajectories(FlatRange{0, grid.size()}, {});
    std::atomic<bool> stop{false};
    std::vector<std::int64_t> written;
    const SweepReport report = run_sweep(
        spec, grid, backend, pending, 3,
        [&](const BatchOutput& batch) { written.insert(written.end(), batch.flat_index.begin(), batch.flat_index.end()); },
        [&](const SweepProgress& progress) {
            if (progress.trajectories_done >= 6) stop = true;
        },
        stop);
    EXPECT_TRUE(report.interrupted);
    EXPECT_EQ(written.size(), 6u);
    EXPECT_EQ(report.progress.trajectories_done, 6);
}

TEST(RunSweep, WriterErrorsReachTheCaller) {
    const SweepSpec spec = tiny_spec(10);
    const Grid grid(spec);
    RecordingBackend backend;
    const PendingSet pending = pending_trajectories(FlatRange{0, grid.size()}, {});
    std::atomic<bool> stop{false};
    EXPECT_THROW(run_sweep(
                     spec, grid, backend, pending, 4, [](const BatchOutput&) { throw std::runtime_error("disk full"); },
                     nullptr, stop),
                 std::runtime_error);
}

long peak_resident_kib() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_maxrss;
}

// A million real trajectories through the CPU backend: peak memory grows with
// the batch, not the grid.
TEST(RunSweep, MemoryIsBoundedByTheBatchNotTheGrid) {
    const SweepSpec spec = tiny_spec(1'000'000);
    const Grid grid(spec);
    auto backend = make_cpu_backend(2);
    const PendingSet pending = pending_trajectories(FlatRange{0, grid.size()}, {});
    const long before = peak_resident_kib();
    std::atomic<bool> stop{false};
    std::int64_t written = 0;
    run_sweep(spec, grid, *backend, pending, 4096, [&](const BatchOutput& batch) { written += static_cast<std::int64_t>(batch.size()); },
              nullptr, stop);
    EXPECT_EQ(written, 1'000'000);
    const long growth_kib = peak_resident_kib() - before;
    EXPECT_LT(growth_kib, 64 * 1024) << "peak RSS grew by " << growth_kib << " KiB";
}

// The whole `run` pipeline, HDF5 writer included (chunk caches, dimension
// scales, pending set): 10^5 trajectories, then 10^6 in batches of the same
// size. Peak RSS is a high-water mark, so whatever the second run needs beyond
// the first is what grows with the grid; before the fix it was ~90 MiB (4 MiB
// chunk caches filling up, 24 B per seed of scale values, 8 B per trajectory
// of pending list). A larger batch, on the other hand, must raise the peak.
// With 2 analysis threads (what a device backend asks for) the writer's OpenMP
// team must not grow it either: per-batch std::async threads did, +8 to +20 MiB.
class CpuBackendWithAnalysisThreads : public Backend {
public:
    explicit CpuBackendWithAnalysisThreads(int analysis_threads)
        : cpu_(make_cpu_backend(2)), analysis_threads_(analysis_threads) {}
    std::string name() const override { return cpu_->name(); }
    std::string device_name() const override { return cpu_->device_name(); }
    std::int64_t default_batch_size(const SweepSpec& spec) const override { return cpu_->default_batch_size(spec); }
    int host_threads_for_analysis() const override { return analysis_threads_; }
    void run_batch(const SweepSpec& spec, const Grid& grid, std::span<const std::int64_t> flat_indices,
                   BatchOutput& out) override {
        cpu_->run_batch(spec, grid, flat_indices, out);
    }

private:
    std::unique_ptr<Backend> cpu_;
    int analysis_threads_;
};

class WriterMemoryIsBounded : public ::testing::TestWithParam<int> {};

INSTANTIATE_TEST_SUITE_P(AnalysisThreads, WriterMemoryIsBounded, ::testing::Values(1, 2));

TEST_P(WriterMemoryIsBounded, ByTheBatchNotTheGrid) {
    const std::filesystem::path folder =
        std::filesystem::temp_directory_path() / ("collapse-scheduler-memory-" + std::to_string(::getpid()));
    std::filesystem::create_directories(folder);
    auto backend = std::make_unique<CpuBackendWithAnalysisThreads>(GetParam());
    const auto sweep = [&](std::int64_t trajectories, std::int64_t batch_size) {
        const SweepSpec spec = tiny_spec(trajectories);
        const Grid grid(spec);
        const std::string path = (folder / "run.h5").string();
        auto writer = storage::ResultWriter::create(path, spec, grid, {"memory test", "cpu", "cpu"},
                                                    storage::ShardRange{}, true);
        std::atomic<bool> stop{false};
        std::int64_t written = 0;
        run_sweep(spec, grid, *backend, pending_trajectories(FlatRange{0, grid.size()}, {}), batch_size,
                  [&](const BatchOutput& batch) {
                      writer->write_batch(batch);
                      written += static_cast<std::int64_t>(batch.size());
                  },
                  nullptr, stop);
        writer->close();
        EXPECT_EQ(written, trajectories);
        return peak_resident_kib();
    };
    // With 2 analysis threads the second thread's malloc arena fills once,
    // at some batch of the first long run (+10.3 MiB in 2 of 3 runs from 10^5
    // to 10^6, never again after): growth with the grid is what a second
    // 10^6 run beyond the first adds, where per-batch threads added 8-20 MiB.
    const long small_grid = sweep(100'000, 4096);
    const long large_grid = sweep(1'000'000, 4096);
    const long larger_grid = sweep(2'000'000, 4096);
    const long large_batch = sweep(100'000, 65536);
    std::filesystem::remove_all(folder);
    std::cout << "peak RSS: 10^5 trajectories " << small_grid << " KiB, 10^6 " << large_grid << " KiB, 2x10^6 "
              << larger_grid << " KiB (batches of 4096); 10^5 in batches of 65536 " << large_batch << " KiB\n";
    EXPECT_LT(large_grid - small_grid, (GetParam() == 1 ? 8 : 16) * 1024)
        << "10x the grid raised peak RSS by " << large_grid - small_grid << " KiB";
    EXPECT_LT(larger_grid - large_grid, 4 * 1024) << "2x the grid raised peak RSS by " << larger_grid - large_grid << " KiB";
    EXPECT_GT(large_batch - larger_grid, 16 * 1024) << "16x the batch raised peak RSS by only " << large_batch - larger_grid << " KiB";
}

} // namespace
} // namespace collapse
