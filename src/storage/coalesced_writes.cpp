// When staged chunks are stored (docs/format.md, "Write windows"). A window
// marks the file "open for writing", and a kill inside one leaves a file
// that plain HDF5 readers refuse. With small batches the windows added up
// (3.4-7.5% of a run's wall time with batches of 8 on a loaded machine,
// against 0.7-2% with 64; docs/performance.md): coalescing stores every
// batch finished within coalesce_seconds of the last window in one window,
// at the price of that much finished work lost to a kill.
#include <algorithm>
#include <chrono>
#include <utility>

#include "writer_state.hpp"

namespace collapse::storage {

using namespace detail;

namespace detail {

namespace {

using Clock = std::chrono::steady_clock;

Clock::time_point next_window_due(const ResultWriter::State& state) {
    return state.last_window_end +
           std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(state.coalesce_seconds));
}

// The flusher thread: stores what is pending once its window is due, while
// the caller's thread computes the next batch.
void flush_when_due(ResultWriter::State& state) {
    std::unique_lock lock(state.mutex);
    while (!state.stopping) {
        if (state.pending.empty() || state.failed) {
            state.changed.wait(lock);
            continue;
        }
        const Clock::time_point due = next_window_due(state);
        if (Clock::now() < due) {
            state.changed.wait_until(lock, due);
            continue;
        }
        QuietErrors quiet; // per thread: HDF5 is a thread-safe build here, and serialised by the mutex anyway
        try {
            store_pending(state);
        } catch (...) {
            state.flush_error = std::current_exception();
        }
    }
}

} // namespace

void add_pending(ResultWriter::State& state, std::vector<StagedChunk> chunks, std::int64_t finished) {
    for (StagedChunk& chunk : chunks) {
        ChunkKey key{chunk.layout->path(), chunk.offset};
        state.pending.insert_or_assign(std::move(key), std::move(chunk));
    }
    state.pending_finished += finished;
}

void store_pending(ResultWriter::State& state) {
    if (state.pending.empty()) return;
    std::vector<StagedChunk> data, status;
    bool seed_data = false;
    for (auto& [key, chunk] : state.pending) {
        seed_data = seed_data || !chunk.layout->gridded;
        (key.first == "/results/status" ? status : data).push_back(std::move(chunk));
    }
    state.pending.clear();
    const std::int64_t finished = std::exchange(state.pending_finished, 0);
    write_in_window(state, [&] {
        const auto dataset_of = [&](const DatasetLayout& layout) { return state.datasets.at(layout.path()).get(); };
        store_chunks(data, dataset_of);
        // Status last, after the data are on disk: a reader (or --resume) that
        // sees status >= 0 can trust the rest of the trajectory. Closing the
        // window flushes it.
        check(H5Fflush(state.file.get(), H5F_SCOPE_GLOBAL), state.path + ": flush failed");
        store_chunks(status, dataset_of);
        if (seed_data) pause_for_tests("SEED_DATA");
    });
    state.safe_trajectories += finished;
    state.last_window_end = Clock::now();
    state.changed.notify_all();
}

void store_if_due(ResultWriter::State& state) {
    if (state.pending.empty()) return;
    if (state.coalesce_seconds <= 0 || Clock::now() >= next_window_due(state)) {
        store_pending(state);
        return;
    }
    if (!state.flusher.joinable()) {
        state.stopping = false;
        state.flusher = std::thread([&state] { flush_when_due(state); });
    }
    state.changed.notify_all();
}

void rethrow_flush_error(ResultWriter::State& state) {
    if (state.flush_error) std::rethrow_exception(std::exchange(state.flush_error, nullptr));
}

void stop_flusher(ResultWriter::State& state) {
    {
        const std::lock_guard lock(state.mutex);
        state.stopping = true;
        state.changed.notify_all();
    }
    if (state.flusher.joinable()) state.flusher.join();
}

} // namespace detail

void ResultWriter::coalesce_writes(double seconds) {
    if (!state_) return;
    const std::lock_guard lock(state_->mutex);
    state_->coalesce_seconds = std::max(0.0, seconds);
}

} // namespace collapse::storage
