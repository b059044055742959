// Host side of a CUDA batch: builds every trajectory's initial state and pair
// set with the same setup code as the CPU backend (draw_seed,
// make_trajectory), packs them into contiguous pinned pools with
// per-trajectory offsets, and after the run turns the copied-back final
// states into BatchOutput geometry exactly as the CPU backend does.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "collapse/config.hpp"
#include "collapse/results.hpp"
#include "collapse/sweep/grid.hpp"
#include "initial_state_tasks.hpp"
#include "pinned_buffer.hpp"
#include "team_kernel.hpp"
#include "trajectory_kernel.hpp"

namespace collapse::cuda {

// Pool lengths in elements of one batch, for the device allocation.
struct PoolSizes {
    std::size_t states = 0;        // also the gradient pool
    std::size_t workspaces = 0;
    std::size_t scratch = 0;
    std::size_t primary_labels = 0; // per seed slot
    std::size_t second_labels = 0;  // per trajectory
    std::size_t label_degrees = 0;
    std::size_t inputs = 0;         // per seed slot, teacher_student
    std::size_t team_streamed = 0;  // team kernel only
    std::size_t class_members = 0;  // team kernel only (ints)
};

template <class Real>
struct HostBatch {
    explicit HostBatch(HostMemory memory = HostMemory::pinned)
        : tasks(memory), states(memory), primary_labels(memory), second_labels(memory), label_degrees(memory),
          inputs(memory) {}

    std::int64_t count = 0;
    PoolSizes sizes;
    std::vector<std::int64_t> record_steps;
    // The widest head of the whole grid (SweepSpec::max_head_dim). The
    // lockstep path pads every batch that has a head to it, so that the
    // head products keep one shape, and hence one pinned cuBLASLt algorithm
    // and one summation order, whichever trajectories share a batch.
    int grid_widest_head = 0;
    PinnedBuffer<TrajectoryTask<Real>> tasks;
    PinnedBuffer<Real> states; // initial states before the run, final states after
    PinnedBuffer<int> primary_labels;
    PinnedBuffer<int> second_labels;
    PinnedBuffer<Real> label_degrees;
    PinnedBuffer<Real> inputs;

    // Set before pack_batch: the device makes the initial states
    // (initial_state_generation.hpp, bit-identical to make_trajectory's).
    // pack_batch then fills the fields below instead of copying initial
    // states into `states`, which only receives the final states.
    bool device_initial_states = false;
    std::uint64_t master_seed = 0;
    SeedNormalsLayout seed_normals;
    std::uint64_t state_stride = 0;       // largest state size of the batch
    std::vector<std::int64_t> slot_seeds; // seed index of each seed slot
    std::vector<InitialStateTask> initial_tasks;
};

// Validates the batch's parameters (std::invalid_argument, as the CPU
// backend), calls prepare_batch_output, fills `host` and writes the initial
// head into `out` (with save_initial).
template <class Real>
void pack_batch(const SweepSpec& spec, const Grid& grid, std::span<const std::int64_t> flat_indices,
                HostBatch<Real>& host, BatchOutput& out);

// Writes final label embeddings, head and (save_samples) sample embeddings
// from host.states, which must by now hold the final states.
template <class Real>
void unpack_final_states(const SweepSpec& spec, const HostBatch<Real>& host, BatchOutput& out);

// Points the result arguments of a kernel or of the lockstep loop (traces
// label_distance, projected_distance, accuracy, loss [count][T]; summaries
// [count]) at `out`'s arrays, for a run on the host. DeviceResults::point_at
// (device_transfers.hpp) is the same for the device.
template <class Args>
void point_results_at(Args& args, BatchOutput& out) {
    args.label_distance = out.label_distance_trace.data();
    args.projected_distance = out.projected_distance_trace.data();
    args.accuracy = out.accuracy_trace.data();
    args.loss = out.loss_trace.data();
    args.summaries = out.summary.data();
}

// Device bytes one trajectory of this spec needs at most (widest head).
std::size_t device_bytes_per_trajectory(const SweepSpec& spec);
// Pinned host bytes one trajectory needs at most.
std::size_t host_bytes_per_trajectory(const SweepSpec& spec);

extern template void pack_batch<float>(const SweepSpec&, const Grid&, std::span<const std::int64_t>,
                                       HostBatch<float>&, BatchOutput&);
extern template void pack_batch<double>(const SweepSpec&, const Grid&, std::span<const std::int64_t>,
                                        HostBatch<double>&, BatchOutput&);
extern template void unpack_final_states<float>(const SweepSpec&, const HostBatch<float>&, BatchOutput&);
extern template void unpack_final_states<double>(const SweepSpec&, const HostBatch<double>&, BatchOutput&);

} // namespace collapse::cuda
