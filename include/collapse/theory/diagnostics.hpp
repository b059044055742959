// What is computed on the host from a finished batch, in one place for every
// backend: the scheduler calls analyse_batch after run_batch has returned and
// before the batch is written, so no backend spends its timed run on it and a
// new backend cannot forget it.
//
// * the measured slow_rate and its fit window (trajectory/slow_rate_fit.hpp);
// * the theory columns of /results (theory_slow_rate, theory_window_rate,
//   critical_lr, selfconsistency_residual) and /traces/theory_label_distance
//   (docs/model.md, "Theory diagnostics").
#pragma once

#include "collapse/config.hpp"
#include "collapse/results.hpp"
#include "collapse/sweep/grid.hpp"

namespace collapse::theory {

// Fills every trajectory's slow_rate, slow_rate_first_step/last_step, out.theory
// and out.theory_label_distance_trace from its parameters, statuses, traces
// and final geometry. The pair graph, and with it the spectrum, depends only on
// (seed, frustrated count): each is built once per batch, whatever the h, lr
// and stop_gradient axes. `threads` <= 0: OpenMP's default.
void analyse_batch(const SweepSpec& spec, const Grid& grid, BatchOutput& out, int threads = 0);

} // namespace collapse::theory
