// The parts of `run` beyond one process with one backend: several backends
// in one process (--devices) and MPI mode (docs/scaling.md).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "collapse/backend/backend.hpp"
#include "collapse/mpi/mpi_session.hpp"
#include "collapse/scheduler/twin_sharing.hpp"
#include "commands.hpp"

namespace collapse::cli {

// Cores this process may use: its CPU affinity mask (what Slurm's
// --cpus-per-task or mpirun's binding gave it) and, when that is the whole
// machine, the machine shared evenly among `local_processes`.
int usable_cores(int local_processes);

// The backends `run` uses. Without --devices, one backend as make_backend
// gives it. With --devices "0,1,...": one CUDA backend per listed GPU for
// --backend cuda|auto (auto falls back to CPU backends, saying why in
// `note`), or for --backend cpu one CPU backend per entry, each with
// `threads` threads (0: the cores shared evenly), so the multi-backend path
// can be tested and used without GPUs. Throws UsageError for a malformed list.
std::vector<std::unique_ptr<Backend>> make_run_backends(const std::string& choice, const std::string& devices,
                                                       int threads, std::string& note);

// `backend` wrapped so that h = 0 stop-gradient twins are computed once
// (twin_sharing.hpp), unless COLLAPSE_SHARE_TWINS=0; and the twin index the
// batch cutters use (disabled by the same switch).
std::unique_ptr<Backend> share_twins(std::unique_ptr<Backend> backend);
TwinIndex twins_for(const SweepSpec& spec);
// "N trajectories computed for M cells" when sharing saved work, else "".
std::string twin_sharing_summary(std::span<const std::unique_ptr<Backend>> backends);

// One rank of an MPI-launched `run` (mpirun -n R / srun). A session of size 1
// falls back to the single-process run.
int run_mpi_command(const RunOptions& options, const mpi::LaunchInfo& launch);

// The single-process run: one backend, or several with --devices.
int run_single_process(const RunOptions& options);

} // namespace collapse::cli
