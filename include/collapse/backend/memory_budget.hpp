// How much memory a run needs and how much it has, checked before any file
// is made (docs/cli.md, "Limits"). The working set of a trajectory is a pure
// function of the spec, so `validate` reports it without a backend and `run`
// refuses a spec that cannot fit instead of dying of std::bad_alloc.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "collapse/config.hpp"

namespace collapse {

// Bytes one trajectory holds on the host while it runs on the CPU backend.
struct TrajectoryMemory {
    std::uint64_t state = 0;     // the state vector (StateLayout), in the run precision
    std::uint64_t gradient = 0;  // one state-sized gradient
    std::uint64_t workspace = 0; // WorkspaceLayout plus the integrator's scratch vectors (rk4: 3 states)
    std::uint64_t setup = 0;     // the seed's random draws and the trajectory setup (initial state, labels, inputs)
    std::uint64_t output = 0;    // its slot in one batch output buffer (traces, final geometry)

    std::uint64_t compute() const { return state + gradient + workspace + setup; }
};

// At the widest head of the grid. Saturates at UINT64_MAX instead of wrapping.
TrajectoryMemory host_trajectory_memory(const SweepSpec& spec);

// Memory this process may still take on the host: MemAvailable of
// /proc/meminfo, lowered to what the cgroup's memory.max (v2) or
// memory.limit_in_bytes (v1) leaves, where one is set.
struct HostMemory {
    std::uint64_t bytes = 0; // 0: unknown, nothing is checked
    std::string source;      // where `bytes` came from, for messages
};
HostMemory available_host_memory();

// One memory a run draws on (host RAM, a GPU) with what the run needs of it.
struct MemoryBudget {
    std::string resource;          // "host memory", "GPU 0 memory"
    std::string available_source;  // how `available` was measured
    std::uint64_t available = 0;   // 0: unknown, not checked
    std::uint64_t per_trajectory = 0;   // what each trajectory in flight needs
    std::int64_t in_flight = 0;         // trajectories computing at once (CPU: threads; GPU: the batch)
    std::uint64_t per_batch_slot = 0;   // what each trajectory of the batch needs besides (output buffers)
    std::int64_t batch_size = 0;
    std::uint64_t fixed = 0;            // independent of the batch (e.g. the GPU's per-thread stacks)
    std::string breakdown;              // what per_trajectory is made of, for messages

    std::uint64_t needed() const; // saturating
};

// The CPU backend's: `threads` trajectories compute at once, and the
// pipeline holds two batch output buffers of `batch_size` trajectories.
MemoryBudget cpu_memory_budget(const SweepSpec& spec, int threads, std::int64_t batch_size, const HostMemory& host);

// "1.5 GiB", "512 KiB", "17 B".
std::string format_bytes(std::uint64_t bytes);

// Budgets of one resource (several CPU backends share host memory) are added
// up. Returns one message per resource that cannot hold its share, empty when
// everything fits. A message names both numbers and the spec keys and options
// that drive them (model.classes, model.samples_per_class, model.dim,
// grid.head_dim, --threads, --batch-size).
std::vector<std::string> memory_shortfalls(const SweepSpec& spec, const std::vector<MemoryBudget>& budgets);

// The largest batch for which `budget` still fits, 0 when not even the
// trajectories in flight fit.
std::int64_t largest_fitting_batch(const MemoryBudget& budget);

} // namespace collapse
