#include "collapse/scheduler/parallel_sweep.hpp"

#include <algorithm>
#include <array>
#include <condition_variable>
#include <deque>
#include <exception>
#include <stdexcept>
#include <thread>

#include "collapse/theory/diagnostics.hpp"

namespace collapse {

PendingQueue::PendingQueue(PendingSet pending, std::int64_t chunk_size, TwinIndex twins)
    : pending_(std::move(pending)), cutter_(pending_, twins), chunk_size_(chunk_size) {
    if (chunk_size < 1) throw std::invalid_argument("batch size must be at least 1");
}

std::vector<std::int64_t> PendingQueue::next() {
    const std::lock_guard lock(mutex_);
    std::vector<std::int64_t> chunk;
    cutter_.next(chunk_size_, chunk);
    return chunk;
}

namespace {

// Shared state of one pulling run: the writer queue and the first error.
struct PullState {
    std::mutex mutex;
    std::condition_variable changed;
    std::deque<BatchOutput*> to_write; // filled buffers, in finishing order
    std::vector<int> writes_outstanding; // per backend: its buffers queued or being written
    int backends_running = 0;
    std::exception_ptr error;
    std::atomic<bool> failed{false};
};

} // namespace

SweepReport run_sweep_pulling(const SweepSpec& spec, const Grid& grid, std::span<Backend* const> backends,
                              const ChunkSource& next_chunk, const std::function<void(const BatchOutput&)>& write_batch,
                              const std::function<void(const SweepProgress&)>& on_progress,
                              const std::atomic<bool>& stop_requested) {
    if (backends.empty()) throw std::invalid_argument("run_sweep_pulling needs at least one backend");
    PullState state;
    state.writes_outstanding.assign(backends.size(), 0);
    state.backends_running = static_cast<int>(backends.size());
    std::mutex source_mutex;
    std::atomic<bool> interrupted{false};
    const auto record_error = [&state] {
        const std::lock_guard lock(state.mutex);
        if (!state.error) state.error = std::current_exception();
        state.failed = true;
        state.changed.notify_all();
    };

    // Two buffers per backend, as in run_sweep: one computing, one being
    // written. A backend waits only when both of its buffers are still queued.
    std::vector<std::array<BatchOutput, 2>> buffers(backends.size());
    std::vector<std::thread> workers;
    for (std::size_t b = 0; b < backends.size(); ++b)
        workers.emplace_back([&, b] {
            try {
                for (int current = 0;; current = 1 - current) {
                    if (state.failed) break;
                    if (stop_requested.load()) {
                        interrupted = true;
                        break;
                    }
                    std::vector<std::int64_t> chunk;
                    {
                        const std::lock_guard lock(source_mutex);
                        chunk = next_chunk();
                    }
                    if (chunk.empty()) break;
                    {
                        std::unique_lock lock(state.mutex);
                        state.changed.wait(lock, [&] { return state.writes_outstanding[b] < 2 || state.failed; });
                    }
                    if (state.failed) break;
                    BatchOutput& batch = buffers[b][current];
                    backends[b]->run_batch(spec, grid, chunk, batch);
                    const std::lock_guard lock(state.mutex);
                    ++state.writes_outstanding[b];
                    state.to_write.push_back(&batch);
                    state.changed.notify_all();
                }
            } catch (...) {
                record_error();
            }
            const std::lock_guard lock(state.mutex);
            --state.backends_running;
            state.changed.notify_all();
        });

    // The writer runs on the calling thread: the HDF5 writer is not
    // thread-safe, and this keeps every write on one thread.
    SweepReport report;
    for (;;) {
        BatchOutput* batch = nullptr;
        {
            std::unique_lock lock(state.mutex);
            state.changed.wait(lock, [&] { return !state.to_write.empty() || state.backends_running == 0; });
            if (state.to_write.empty()) break;
            batch = state.to_write.front();
            state.to_write.pop_front();
        }
        std::size_t owner = 0;
        while (batch != &buffers[owner][0] && batch != &buffers[owner][1]) ++owner;
        if (!state.failed) {
            try {
                theory::analyse_batch(spec, grid, *batch); // host-side, off the backends' threads
                write_batch(*batch);
                for (const TrajectorySummary& summary : batch->summary) {
                    const auto status = static_cast<int>(summary.status);
                    if (status >= 0 && status < 3) ++report.progress.status_counts[status];
                }
                report.progress.trajectories_done += static_cast<std::int64_t>(batch->flat_index.size());
                if (on_progress) on_progress(report.progress);
            } catch (...) {
                record_error();
            }
        }
        const std::lock_guard lock(state.mutex);
        --state.writes_outstanding[owner];
        state.changed.notify_all();
    }
    for (std::thread& worker : workers) worker.join();
    if (state.error) std::rethrow_exception(state.error);
    report.interrupted = interrupted.load();
    return report;
}

} // namespace collapse
