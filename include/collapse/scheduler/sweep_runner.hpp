// Grid to batches: which trajectories a process runs (shards, resume), in
// what batches, and the pipeline that keeps the backend busy while the
// previous batch is being written.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "collapse/backend/backend.hpp"
#include "collapse/config.hpp"
#include "collapse/results.hpp"
#include "collapse/sweep/grid.hpp"

namespace collapse {

// `--shard I/N`: shard I of N owns the contiguous flat range shard_range(...).
struct ShardSelection {
    std::int64_t index = 0;
    std::int64_t count = 1;
};

// Parses "I/N" (0 <= I < N); throws std::invalid_argument naming the problem.
ShardSelection parse_shard(const std::string& text);

struct FlatRange {
    std::int64_t begin = 0, end = 0;
    std::int64_t size() const { return end - begin; }
    friend bool operator==(const FlatRange&, const FlatRange&) = default;
};
// Contiguous ranges keep each shard's HDF5 writes local and let `merge` map a
// shard with a handful of hyperslabs; sizes differ by at most one.
FlatRange shard_range(std::int64_t grid_size, ShardSelection shard);

// The flat indices a run still has to do, in run order, held as runs of
// consecutive indices: a fresh run or shard is one range and a resumed one
// has as many as the gaps it left, so memory is O(runs), not O(grid).
class PendingSet {
public:
    // Where the next take() continues.
    struct Position {
        std::size_t range = 0;
        std::int64_t offset = 0; // within ranges()[range]
    };

    PendingSet() = default;
    explicit PendingSet(std::vector<FlatRange> ranges); // empty ranges are dropped
    // The runs of consecutive indices of `indices`, in the order given.
    static PendingSet of(const std::vector<std::int64_t>& indices);
    // Appends the flat indices first + i with status[i] < 0 (not run yet);
    // `first` must not precede what is already in the set.
    void add_not_run(std::int64_t first, std::span<const std::int8_t> status);

    std::int64_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    // True when the runs are in increasing order (fresh, shard and resumed
    // sets are); contains() is then a binary search.
    bool sorted() const { return sorted_; }
    bool contains(std::int64_t flat) const;
    const std::vector<FlatRange>& ranges() const { return ranges_; }
    // Replaces `out` with the next (at most) `count` indices from `at`, and
    // moves `at` past them; `out` is empty once everything has been taken.
    void take(Position& at, std::int64_t count, std::vector<std::int64_t>& out) const;
    std::vector<std::int64_t> indices() const; // every index, for tests and small sets

private:
    std::vector<FlatRange> ranges_;
    std::int64_t size_ = 0;
    bool sorted_ = true;
};

// Flat indices in `range` whose status is -1 (not run yet), in increasing
// order. `status` (the whole grid's) may be empty, meaning nothing has run.
PendingSet pending_trajectories(FlatRange range, std::span<const std::int8_t> status);

struct SweepProgress {
    std::int64_t trajectories_done = 0;  // in this run
    std::int64_t trajectories_total = 0; // in this run
    std::int64_t status_counts[3] = {0, 0, 0}; // stable, collapsed, diverged, in this run
};

struct SweepReport {
    SweepProgress progress;
    bool interrupted = false; // stopped early because stop_requested became true
};

// Runs `pending` through `backend` in batches of `batch_size`. Each finished
// batch goes to `write_batch` on a second thread while the backend computes
// the next one; `write_batch` calls never overlap and keep batch order.
// Checks `stop_requested` between batches: the batch in flight is finished
// and written, then the run returns with interrupted = true.
SweepReport run_sweep(const SweepSpec& spec, const Grid& grid, Backend& backend, const PendingSet& pending,
                      std::int64_t batch_size, const std::function<void(const BatchOutput&)>& write_batch,
                      const std::function<void(const SweepProgress&)>& on_progress,
                      const std::atomic<bool>& stop_requested);

} // namespace collapse
