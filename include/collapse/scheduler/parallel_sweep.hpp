// Several backends (GPUs, or CPU backends for testing) in one process, or one
// backend fed by a remote coordinator (MPI): each backend runs in its own
// host thread and pulls batches from a shared source; a single writer thread
// writes finished batches in the order they finish. Trajectories are
// independent, so which backend ran which batch never changes the data.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <vector>

#include "collapse/backend/backend.hpp"
#include "collapse/scheduler/sweep_runner.hpp"
#include "collapse/scheduler/twin_sharing.hpp"

namespace collapse {

// Hands out consecutive slices of a pending set, at most `chunk_size` long
// (plus, with `twins`, the h = 0 stop-gradient twins of its entries: see
// twin_sharing.hpp). Thread-safe; an empty slice means the set is exhausted.
class PendingQueue {
public:
    PendingQueue(PendingSet pending, std::int64_t chunk_size, TwinIndex twins = {});
    std::vector<std::int64_t> next();
    std::int64_t size() const { return pending_.size(); }

private:
    std::mutex mutex_;
    PendingSet pending_;
    BatchCutter cutter_;
    std::int64_t chunk_size_;
};

// Returns the next batch of flat indices to run; empty means no more work.
// Called from the backend threads, one call at a time (serialised by the
// runner), so a source may talk to MPI under MPI_THREAD_SERIALIZED.
using ChunkSource = std::function<std::vector<std::int64_t>()>;

// Runs batches from `next_chunk` on every backend until the source is empty
// or `stop_requested` is set (batches in flight are finished and written,
// then interrupted = true). `write_batch` and `on_progress` run on one writer
// thread, never concurrently. trajectories_total is left for the caller,
// since a pulled source need not know its size. The first error of any
// thread stops the others and is rethrown here.
SweepReport run_sweep_pulling(const SweepSpec& spec, const Grid& grid, std::span<Backend* const> backends,
                              const ChunkSource& next_chunk, const std::function<void(const BatchOutput&)>& write_batch,
                              const std::function<void(const SweepProgress&)>& on_progress,
                              const std::atomic<bool>& stop_requested);

} // namespace collapse
