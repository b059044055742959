#include "collapse/scheduler/sweep_runner.hpp"

#include "collapse/scheduler/twin_sharing.hpp"

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <stdexcept>
#include <string>

#include "collapse/theory/diagnostics.hpp"

namespace collapse {

ShardSelection parse_shard(const std::string& text) {
    const auto slash = text.find('/');
    ShardSelection shard;
    const auto parse = [&](std::string_view part, std::int64_t& value) {
        const auto [end, error] = std::from_chars(part.data(), part.data() + part.size(), value);
        return error == std::errc() && end == part.data() + part.size() && !part.empty();
    };
    if (slash == std::string::npos || !parse(std::string_view(text).substr(0, slash), shard.index) ||
        !parse(std::string_view(text).substr(slash + 1), shard.count))
        throw std::invalid_argument("--shard '" + text + "': expected I/N with integers, e.g. 0/4");
    if (shard.count < 1 || shard.index < 0 || shard.index >= shard.count)
        throw std::invalid_argument("--shard '" + text + "': need N >= 1 and 0 <= I < N");
    return shard;
}

FlatRange shard_range(std::int64_t grid_size, ShardSelection shard) {
    const auto boundary = [&](std::int64_t i) {
        // i * size / count without overflow for any realistic grid
        return static_cast<std::int64_t>((static_cast<__int128>(i) * grid_size) / shard.count);
    };
    return FlatRange{boundary(shard.index), boundary(shard.index + 1)};
}

PendingSet::PendingSet(std::vector<FlatRange> ranges) {
    for (const FlatRange& range : ranges) {
        if (range.size() <= 0) continue;
        if (!ranges_.empty() && range.begin < ranges_.back().end) sorted_ = false;
        ranges_.push_back(range);
        size_ += range.size();
    }
}

bool PendingSet::contains(std::int64_t flat) const {
    if (!sorted_) return std::any_of(ranges_.begin(), ranges_.end(),
                                     [&](const FlatRange& r) { return r.begin <= flat && flat < r.end; });
    const auto after = std::upper_bound(ranges_.begin(), ranges_.end(), flat,
                                        [](std::int64_t value, const FlatRange& r) { return value < r.begin; });
    return after != ranges_.begin() && flat < std::prev(after)->end;
}

PendingSet PendingSet::of(const std::vector<std::int64_t>& indices) {
    std::vector<FlatRange> runs;
    for (const std::int64_t flat : indices) {
        if (!runs.empty() && runs.back().end == flat) ++runs.back().end;
        else runs.push_back(FlatRange{flat, flat + 1});
    }
    return PendingSet(std::move(runs));
}

void PendingSet::take(Position& at, std::int64_t count, std::vector<std::int64_t>& out) const {
    out.clear();
    while (count > 0 && at.range < ranges_.size()) {
        const FlatRange& range = ranges_[at.range];
        const std::int64_t taken = std::min(count, range.size() - at.offset);
        for (std::int64_t i = 0; i < taken; ++i) out.push_back(range.begin + at.offset + i);
        count -= taken;
        at.offset += taken;
        if (at.offset == range.size()) {
            ++at.range;
            at.offset = 0;
        }
    }
}

std::vector<std::int64_t> PendingSet::indices() const {
    std::vector<std::int64_t> all;
    Position start;
    take(start, size_, all);
    return all;
}

void PendingSet::add_not_run(std::int64_t first, std::span<const std::int8_t> status) {
    if (!ranges_.empty() && first < ranges_.back().end)
        throw std::invalid_argument("PendingSet::add_not_run: flat index " + std::to_string(first) +
                                    " precedes the set's end " + std::to_string(ranges_.back().end));
    for (std::size_t i = 0; i < status.size(); ++i) {
        if (status[i] >= 0) continue;
        const std::int64_t flat = first + static_cast<std::int64_t>(i);
        if (!ranges_.empty() && ranges_.back().end == flat) ++ranges_.back().end;
        else ranges_.push_back(FlatRange{flat, flat + 1});
        ++size_;
    }
}

PendingSet pending_trajectories(FlatRange range, std::span<const std::int8_t> status) {
    if (status.empty()) return PendingSet({range});
    PendingSet pending;
    pending.add_not_run(range.begin, status.subspan(static_cast<std::size_t>(range.begin),
                                                    static_cast<std::size_t>(range.size())));
    return pending;
}

namespace {

// The thread that analyses and writes finished batches, one at a time, for a
// whole sweep. One long-lived thread rather than a std::async per batch: an
// OpenMP team started from a new thread gets new threads and malloc arenas,
// and per batch that made peak RSS grow with the number of batches.
class BatchWriterThread {
public:
    BatchWriterThread() : thread_([this] { serve(); }) {}

    ~BatchWriterThread() {
        {
            std::unique_lock lock(mutex_);
            changed_.wait(lock, [&] { return !job_; });
            quitting_ = true;
        }
        changed_.notify_all();
        thread_.join();
    }

    BatchWriterThread(const BatchWriterThread&) = delete;
    BatchWriterThread& operator=(const BatchWriterThread&) = delete;

    // Call wait() first: one job at a time.
    void start(std::function<void()> job) {
        {
            const std::lock_guard lock(mutex_);
            job_ = std::move(job);
        }
        changed_.notify_all();
    }

    // Blocks until the job started last has finished; rethrows its error.
    void wait() {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return !job_; });
        if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
    }

private:
    void serve() {
        std::unique_lock lock(mutex_);
        for (;;) {
            changed_.wait(lock, [&] { return job_ || quitting_; });
            if (!job_) return;
            lock.unlock();
            std::exception_ptr error;
            try {
                job_();
            } catch (...) {
                error = std::current_exception();
            }
            lock.lock();
            job_ = nullptr;
            error_ = error;
            changed_.notify_all();
        }
    }

    std::mutex mutex_;
    std::condition_variable changed_;
    std::function<void()> job_;
    std::exception_ptr error_;
    bool quitting_ = false;
    std::thread thread_; // last: starts once the members it uses exist
};

} // namespace

SweepReport run_sweep(const SweepSpec& spec, const Grid& grid, Backend& backend, const PendingSet& pending,
                      std::int64_t batch_size, const std::function<void(const BatchOutput&)>& write_batch,
                      const std::function<void(const SweepProgress&)>& on_progress,
                      const std::atomic<bool>& stop_requested) {
    if (batch_size < 1) throw std::invalid_argument("batch size must be at least 1");
    SweepReport report;
    report.progress.trajectories_total = pending.size();
    // Two buffers: the backend fills one while the writer thread drains the other.
    BatchOutput buffers[2];
    BatchWriterThread writer;
    const int analysis_threads = backend.host_threads_for_analysis();
    int current = 0;
    BatchCutter cutter(pending, twin_sharing_enabled() ? TwinIndex(spec) : TwinIndex());
    std::vector<std::int64_t> indices; // this batch's flat indices
    for (;;) {
        cutter.next(batch_size, indices);
        if (indices.empty()) break;
        if (stop_requested.load()) {
            report.interrupted = true;
            break;
        }
        const std::size_t count = indices.size();
        BatchOutput& batch = buffers[current];
        backend.run_batch(spec, grid, indices, batch);
        writer.wait(); // rethrows a writer error here
        for (const TrajectorySummary& summary : batch.summary) {
            const auto status = static_cast<int>(summary.status);
            if (status >= 0 && status < 3) ++report.progress.status_counts[status];
        }
        report.progress.trajectories_done += static_cast<std::int64_t>(count);
        // The host-side analysis (slow_rate fit, theory columns) runs on the
        // writer thread too, overlapping the backend's next batch.
        writer.start([&spec, &grid, &write_batch, &batch, analysis_threads] {
            theory::analyse_batch(spec, grid, batch, analysis_threads);
            write_batch(batch);
        });
        if (on_progress) on_progress(report.progress);
        current = 1 - current;
    }
    writer.wait();
    return report;
}

} // namespace collapse
