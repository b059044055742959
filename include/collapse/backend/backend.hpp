// One interface for the places trajectories can run. The scheduler hands a
// backend a batch of flat grid indices and gets a BatchOutput back; how the
// backend spreads the batch over cores or SMs is its own business.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "collapse/backend/memory_budget.hpp"
#include "collapse/config.hpp"
#include "collapse/results.hpp"
#include "collapse/sweep/grid.hpp"

namespace collapse {

struct BackendError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class Backend {
public:
    virtual ~Backend() = default;
    virtual std::string name() const = 0;        // "cpu" or "cuda"
    virtual std::string device_name() const = 0; // CPU model or GPU name, for provenance
    // A batch size that keeps the device busy without holding much memory.
    virtual std::int64_t default_batch_size(const SweepSpec& spec) const = 0;
    // What batches of `batch_size` trajectories of `spec` take from each
    // memory this backend uses, and what that memory has; `run` checks them
    // before it makes a file (memory_budget.hpp). The default is one CPU
    // thread's share of host memory.
    virtual std::vector<MemoryBudget> memory_budgets(const SweepSpec& spec, std::int64_t batch_size) const;
    // How many host threads the scheduler's analysis of a finished batch
    // (slow_rate fit, theory columns: 9 ms per medium trajectory) may use
    // while this backend runs the next batch. The CPU backend holds every
    // core, so 1; a device backend leaves the host idle, so 0: OpenMP's
    // default (OMP_NUM_THREADS, or every core).
    virtual int host_threads_for_analysis() const { return 1; }
    // Runs the given trajectories; `out` is resized and filled in the same order.
    virtual void run_batch(const SweepSpec& spec, const Grid& grid, std::span<const std::int64_t> flat_indices,
                           BatchOutput& out) = 0;
};

// threads <= 0 means all the cores OpenMP sees.
std::unique_ptr<Backend> make_cpu_backend(int threads);

// Throws BackendError when the binary has no CUDA backend or no usable device.
std::unique_ptr<Backend> make_cuda_backend();
// The same on device `device` modulo the visible device count, so a node-local
// MPI rank number works whether a rank sees every GPU of its node or, under
// `srun --gpus-per-task=1`, only its own (docs/scaling.md).
std::unique_ptr<Backend> make_cuda_backend_on(int device);

// "auto" tries CUDA and falls back to the CPU, telling why in `note`.
std::unique_ptr<Backend> make_backend(const std::string& choice, int threads, std::string& note);

} // namespace collapse
