#include "progress.hpp"

#include <unistd.h>

#include <string>

namespace collapse::cli {
namespace {

std::string duration_text(double seconds) {
    if (!(seconds >= 0) || seconds > 1e8) return "?";
    const auto total = static_cast<long>(seconds + 0.5);
    char text[32];
    if (total >= 3600) std::snprintf(text, sizeof text, "%ldh%02ldm", total / 3600, (total / 60) % 60);
    else if (total >= 60) std::snprintf(text, sizeof text, "%ldm%02lds", total / 60, total % 60);
    else std::snprintf(text, sizeof text, "%lds", total);
    return text;
}

} // namespace

ProgressDisplay::ProgressDisplay(std::FILE* stream, bool quiet)
    : stream_(stream), quiet_(quiet), terminal_(isatty(fileno(stream)) != 0), start_(std::chrono::steady_clock::now()) {}

void ProgressDisplay::update(const SweepProgress& progress) {
    if (quiet_) return;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const auto done = static_cast<double>(progress.trajectories_done);
    const double rate = elapsed > 0 ? done / elapsed : 0.0;
    const double remaining = rate > 0 ? static_cast<double>(progress.trajectories_total - progress.trajectories_done) / rate : -1;
    const double percent = progress.trajectories_total > 0 ? 100.0 * done / static_cast<double>(progress.trajectories_total) : 100.0;
    std::fprintf(stream_, "%s%lld/%lld trajectories (%.1f%%)  %.1f traj/s  elapsed %s  ETA %s  [stable %lld, collapsed %lld, diverged %lld]%s",
                 terminal_ ? "\r" : "", static_cast<long long>(progress.trajectories_done),
                 static_cast<long long>(progress.trajectories_total), percent, rate, duration_text(elapsed).c_str(),
                 duration_text(remaining).c_str(), static_cast<long long>(progress.status_counts[0]),
                 static_cast<long long>(progress.status_counts[1]), static_cast<long long>(progress.status_counts[2]),
                 terminal_ ? "\033[K" : "\n");
    stop_if_unwritable();
}

// A closed pipe or a vanished terminal must not end the sweep (SIGPIPE is
// ignored, docs/cli.md): the first failed write turns the display off.
void ProgressDisplay::stop_if_unwritable() {
    if (std::fflush(stream_) != 0 || std::ferror(stream_)) quiet_ = true;
}

void ProgressDisplay::finish(const SweepProgress& progress, bool interrupted) {
    if (quiet_) return;
    if (terminal_) std::fputc('\n', stream_);
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::fprintf(stream_, "%s: %lld of %lld trajectories in %s\n", interrupted ? "interrupted" : "done",
                 static_cast<long long>(progress.trajectories_done), static_cast<long long>(progress.trajectories_total),
                 duration_text(elapsed).c_str());
    stop_if_unwritable();
}

} // namespace collapse::cli
