#include "collapse/scheduler/sweep_runner.hpp"

#include <algorithm>
#include <charconv>
#include <future>
#include <stdexcept>

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

std::vector<std::int64_t> pending_trajectories(FlatRange range, std::span<const std::int8_t> status) {
    std::vector<std::int64_t> pending;
    for (std::int64_t flat = range.begin; flat < range.end; ++flat)
        if (status.empty() || status[static_cast<std::size_t>(flat)] < 0) pending.push_back(flat);
    return pending;
}

SweepReport run_sweep(const SweepSpec& spec, const Grid& grid, Backend& backend, std::span<const std::int64_t> pending,
                      std::int64_t batch_size, const std::function<void(const BatchOutput&)>& write_batch,
                      const std::function<void(const SweepProgress&)>& on_progress,
                      const std::atomic<bool>& stop_requested) {
    if (batch_size < 1) throw std::invalid_argument("batch size must be at least 1");
    SweepReport report;
    report.progress.trajectories_total = static_cast<std::int64_t>(pending.size());
    // Two buffers: the backend fills one while the writer thread drains the other.
    BatchOutput buffers[2];
    std::future<void> writing;
    const auto finish_writing = [&] {
        if (writing.valid()) writing.get(); // rethrows a writer error here
    };
    int current = 0;
    for (std::size_t start = 0; start < pending.size(); start += static_cast<std::size_t>(batch_size)) {
        if (stop_requested.load()) {
            report.interrupted = true;
            break;
        }
        const std::size_t count = std::min(pending.size() - start, static_cast<std::size_t>(batch_size));
        BatchOutput& batch = buffers[current];
        backend.run_batch(spec, grid, pending.subspan(start, count), batch);
        finish_writing();
        for (const TrajectorySummary& summary : batch.summary) {
            const auto status = static_cast<int>(summary.status);
            if (status >= 0 && status < 3) ++report.progress.status_counts[status];
        }
        report.progress.trajectories_done += static_cast<std::int64_t>(count);
        writing = std::async(std::launch::async, [&write_batch, &batch] { write_batch(batch); });
        if (on_progress) on_progress(report.progress);
        current = 1 - current;
    }
    finish_writing();
    return report;
}

} // namespace collapse
