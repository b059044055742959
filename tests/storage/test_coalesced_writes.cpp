// Coalesced write windows (ResultWriter::coalesce_writes, docs/format.md
// "Write windows"): batches that finish close together are stored in one
// window, without changing a byte of what the file holds, within the stated
// interval even when no further batch comes, and a failure on the writer's
// own thread reaches the caller.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "collapse/storage/error.hpp"
#include "synthetic.hpp"

namespace collapse::storage::testing {
namespace {

using Clock = std::chrono::steady_clock;

// Writes seeds and `order` in batches of `batch_size` (in that order), with
// windows coalesced over `seconds` (0: one window per batch).
std::string write_file(const std::string& name, const SweepSpec& spec, const std::vector<std::int64_t>& order,
                       std::size_t batch_size, double seconds) {
    const Grid grid(spec);
    const std::string path = temporary_directory(name) + "/out.h5";
    auto writer = ResultWriter::create(path, spec, grid, test_provenance(), {}, false);
    writer->coalesce_writes(seconds);
    for (std::int64_t seed = 0; seed < spec.seeds; ++seed) writer->write_seed_data(make_seed_data(spec, seed));
    write_in_batches(*writer, spec, order, batch_size);
    writer->close();
    return path;
}

std::int64_t finished_in(const std::string& path, const std::vector<std::int64_t>& indices) {
    const std::vector<std::int8_t> status = ResultReader(path).status();
    std::int64_t finished = 0;
    for (const std::int64_t index : indices) finished += status[static_cast<std::size_t>(index)] >= 0;
    return finished;
}

// A chunk written raw into a staging copy of a single-chunk dataset that the
// file had not allocated yet corrupted the heap (HDF5 1.10.8): two_axis_options
// with 2 seeds has only single-chunk datasets, 40 seeds gives several chunks.
TEST(CoalescedWrites, FileHoldsExactlyWhatOneWindowPerBatchWrites) {
    for (const std::int64_t seeds : {2, 40}) {
        SpecOptions options = two_axis_options();
        options.seeds = seeds;
        const SweepSpec spec = make_spec(options);
        const Grid grid(spec);
        std::vector<std::int64_t> order = shuffled_indices(grid.size(), 5);
        order.resize(order.size() - 3); // some trajectories left unfinished
        const std::string one_each = write_file("one-each", spec, order, 3, 0.0);
        const std::string coalesced = write_file("coalesced", spec, order, 3, 100.0);
        const ResultReader a(one_each), b(coalesced);
        EXPECT_EQ(compare_files(a, b, dataset_paths(spec)), "") << seeds << " seeds";
        EXPECT_EQ(check_finished_trajectories(b, spec), "");
        // Fewer windows leave fewer superseded chunks behind (SWMR never frees them).
        EXPECT_LT(std::filesystem::file_size(coalesced), std::filesystem::file_size(one_each));
    }
}

TEST(CoalescedWrites, DeferredBatchReachesTheFileWithinTheIntervalWithoutAnotherCall) {
    const SweepSpec spec = make_spec(two_axis_options());
    const Grid grid(spec);
    const std::string path = temporary_directory("interval") + "/out.h5";
    auto writer = ResultWriter::create(path, spec, grid, test_provenance(), {}, false);
    constexpr double interval = 2.0;
    writer->coalesce_writes(interval);
    writer->write_batch(make_batch(spec, {0, 1}));
    const auto first_window = Clock::now();
    EXPECT_EQ(finished_in(path, {0, 1}), 2) << "the first batch has no window to wait for";
    writer->write_batch(make_batch(spec, {2, 3}));
    // Read only while the writer's thread is idle: HDF5 refuses to open for
    // writing a file this process holds open for reading.
    EXPECT_EQ(finished_in(path, {2, 3}), 0) << "a batch right after a window must wait for the next one";
    std::this_thread::sleep_until(first_window + std::chrono::duration<double>(interval / 2));
    EXPECT_EQ(finished_in(path, {2, 3}), 0) << "stored before its window was due";
    std::this_thread::sleep_until(first_window + std::chrono::duration<double>(interval + 2.0));
    EXPECT_EQ(finished_in(path, {2, 3}), 2) << "the writer's own thread did not store the deferred batch in time";
    writer->close();
    EXPECT_EQ(check_finished_trajectories(ResultReader(path), spec), "");
}

TEST(CoalescedWrites, CloseStoresWhatIsPending) {
    const SweepSpec spec = make_spec(two_axis_options());
    const Grid grid(spec);
    const std::string path = temporary_directory("close") + "/out.h5";
    auto writer = ResultWriter::create(path, spec, grid, test_provenance(), {}, false);
    writer->coalesce_writes(1000.0);
    for (std::int64_t index = 0; index < 6; ++index) writer->write_batch(make_batch(spec, {index}));
    EXPECT_EQ(finished_in(path, {1, 2, 3, 4, 5}), 0);
    writer->close();
    EXPECT_EQ(finished_in(path, {0, 1, 2, 3, 4, 5}), 6);
    EXPECT_FALSE(ResultReader(path).opened_with_swmr()) << "closed clean";
}

// A deferred window that fails (here: the file was moved away) fails on the
// writer's own thread; the next write_batch, or close(), reports it.
TEST(CoalescedWrites, FailureOnTheWritersThreadReachesTheCaller) {
    const SweepSpec spec = make_spec(two_axis_options());
    const Grid grid(spec);
    for (const bool report_in_close : {false, true}) {
        const std::string path = temporary_directory(report_in_close ? "failure-close" : "failure-batch") + "/out.h5";
        auto writer = ResultWriter::create(path, spec, grid, test_provenance(), {}, false);
        writer->coalesce_writes(0.2);
        writer->write_batch(make_batch(spec, {0}));
        writer->write_batch(make_batch(spec, {1})); // deferred
        std::filesystem::rename(path, path + ".moved");
        std::this_thread::sleep_for(std::chrono::milliseconds(800)); // the window was due after 0.2 s
        try {
            if (report_in_close) writer->close();
            else writer->write_batch(make_batch(spec, {2}));
            ADD_FAILURE() << "the failed window was not reported";
        } catch (const StorageError& error) {
            EXPECT_NE(std::string(error.what()).find("was moved, removed or replaced"), std::string::npos)
                << error.what();
            EXPECT_NE(std::string(error.what()).find("1 of 12 trajectories are safe"), std::string::npos)
                << error.what();
        }
        EXPECT_NO_THROW(writer->close());
        EXPECT_EQ(finished_in(path + ".moved", {0, 1, 2}), 1);
    }
}

} // namespace
} // namespace collapse::storage::testing
