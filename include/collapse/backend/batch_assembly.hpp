// Host helpers both backends use to size a BatchOutput and fill it from
// finished trajectory states, so the two agree on every array's layout.
#pragma once

#include <cstdint>
#include <span>

#include "collapse/config.hpp"
#include "collapse/model/layout.hpp"
#include "collapse/results.hpp"
#include "collapse/trajectory/runner.hpp"

namespace collapse {

// The runner's settings for one trajectory of the sweep; one definition, so
// the CPU and CUDA backends cannot disagree on events.
RunSettings run_settings(const SweepSpec& spec, const TrajectoryParams& params, double reference_distance);

// Resizes every array for `flat_indices.size()` trajectories; traces start NaN,
// head and padding zero.
void prepare_batch_output(const SweepSpec& spec, std::span<const std::int64_t> flat_indices, BatchOutput& out);

// Writes trajectory `slot`'s final y_k, W = B A and (with save_samples) x_i
// from its state; `inputs` are the teacher-student u_i (null otherwise).
template <class Real>
void store_final_geometry(const SweepSpec& spec, const TrajectoryDims& dims, const Real* state, const Real* inputs,
                          std::size_t slot, BatchOutput& out);

// Writes trajectory `slot`'s initial head (zero-padded to h_max), with save_initial.
template <class Real>
void store_initial_head(const SweepSpec& spec, const TrajectoryDims& dims, const Real* initial_state, std::size_t slot,
                        BatchOutput& out);

} // namespace collapse
