// Progress output for `run`: a live line with rate and ETA on a terminal, a
// plain line per batch otherwise (logs, Slurm output files).
#pragma once

#include <chrono>
#include <cstdio>

#include "collapse/scheduler/sweep_runner.hpp"

namespace collapse::cli {

class ProgressDisplay {
public:
    ProgressDisplay(std::FILE* stream, bool quiet);
    void update(const SweepProgress& progress);
    void finish(const SweepProgress& progress, bool interrupted);

private:
    void stop_if_unwritable();
    std::FILE* stream_;
    bool quiet_, terminal_;
    std::chrono::steady_clock::time_point start_;
};

} // namespace collapse::cli
