// run_sweep_pulling: several backends, one writer, a shared pending queue.
// Bit-identity of the data across backends is checked end to end in
// tests/mpi (--devices with CPU backends).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

#include "collapse/scheduler/parallel_sweep.hpp"
#include "scripted_backend.hpp"

namespace collapse {
namespace {

using testing::ScriptedBackend;

// Slow enough that every backend gets work.
class SleepyBackend : public ScriptedBackend {
public:
    SleepyBackend() : ScriptedBackend(TrajectoryStatus::stable, std::chrono::milliseconds(2)) {}
};

SweepSpec small_spec(std::int64_t seeds) { return testing::tiny_spec(seeds); }

std::vector<std::int64_t> iota(std::int64_t count) {
    std::vector<std::int64_t> values(static_cast<std::size_t>(count));
    for (std::int64_t i = 0; i < count; ++i) values[static_cast<std::size_t>(i)] = i;
    return values;
}

TEST(PendingQueue, HandsOutConsecutiveChunksThenNothing) {
    PendingQueue queue(PendingSet::of({4, 5, 9, 10, 11}), 2);
    EXPECT_EQ(queue.next(), (std::vector<std::int64_t>{4, 5}));
    EXPECT_EQ(queue.next(), (std::vector<std::int64_t>{9, 10}));
    EXPECT_EQ(queue.next(), (std::vector<std::int64_t>{11}));
    EXPECT_TRUE(queue.next().empty());
    EXPECT_THROW(PendingQueue(PendingSet::of({1}), 0), std::invalid_argument);
}

TEST(RunSweepPulling, EveryTrajectoryOnceAcrossBackendsOnOneWriterThread) {
    const SweepSpec spec = small_spec(60);
    const Grid grid(spec);
    SleepyBackend a, b, c;
    Backend* const backends[] = {&a, &b, &c};
    PendingQueue queue(PendingSet::of(iota(grid.size())), 3);
    std::vector<std::int64_t> written;
    std::set<std::thread::id> writer_threads;
    std::atomic<bool> stop{false};
    const SweepReport report = run_sweep_pulling(
        spec, grid, backends, [&] { return queue.next(); },
        [&](const BatchOutput& batch) {
            writer_threads.insert(std::this_thread::get_id());
            written.insert(written.end(), batch.flat_index.begin(), batch.flat_index.end());
        },
        nullptr, stop);
    std::sort(written.begin(), written.end());
    EXPECT_EQ(written, iota(grid.size()));
    EXPECT_EQ(writer_threads.size(), 1u);
    EXPECT_GT(a.batches, 0);
    EXPECT_GT(b.batches, 0);
    EXPECT_GT(c.batches, 0);
    EXPECT_EQ(report.progress.trajectories_done, 60);
    EXPECT_EQ(report.progress.status_counts[0], 60);
    EXPECT_FALSE(report.interrupted);
}

TEST(RunSweepPulling, StopFinishesBatchesInFlight) {
    const SweepSpec spec = small_spec(200);
    const Grid grid(spec);
    SleepyBackend a, b;
    Backend* const backends[] = {&a, &b};
    PendingQueue queue(PendingSet::of(iota(grid.size())), 2);
    std::atomic<bool> stop{false};
    std::int64_t written = 0;
    const SweepReport report = run_sweep_pulling(
        spec, grid, backends, [&] { return queue.next(); },
        [&](const BatchOutput& batch) { written += static_cast<std::int64_t>(batch.flat_index.size()); },
        [&](const SweepProgress& progress) {
            if (progress.trajectories_done >= 10) stop = true;
        },
        stop);
    EXPECT_TRUE(report.interrupted);
    EXPECT_EQ(written, report.progress.trajectories_done);
    EXPECT_LT(written, 200);
    EXPECT_EQ(written, 2 * (a.batches + b.batches)); // everything computed was written
}

TEST(RunSweepPulling, BackendAndWriterErrorsReachTheCaller) {
    const SweepSpec spec = small_spec(30);
    const Grid grid(spec);
    SleepyBackend good, bad;
    bad.fail = true;
    Backend* const backends[] = {&good, &bad};
    std::atomic<bool> stop{false};
    PendingQueue queue(PendingSet::of(iota(grid.size())), 2);
    EXPECT_THROW(run_sweep_pulling(spec, grid, backends, [&] { return queue.next(); }, [](const BatchOutput&) {},
                                   nullptr, stop),
                 std::runtime_error);
    PendingQueue again(PendingSet::of(iota(grid.size())), 2);
    Backend* const one[] = {&good};
    EXPECT_THROW(run_sweep_pulling(
                     spec, grid, one, [&] { return again.next(); },
                     [](const BatchOutput&) { throw std::runtime_error("disk full"); }, nullptr, stop),
                 std::runtime_error);
}

} // namespace
} // namespace collapse
