// The theory columns of /results (theory_slow_rate, critical_lr,
// selfconsistency_residual), computed on the host after a batch has run.
// Both backends call this, so the columns do not depend on the backend.
#pragma once

#include "collapse/config.hpp"
#include "collapse/results.hpp"
#include "collapse/sweep/grid.hpp"

namespace collapse::theory {

// Fills out.theory (one entry per trajectory of `out`) from the trajectories'
// parameters, statuses and final geometry. The pair graph, and with it the
// spectrum, depends only on (seed, frustrated count): each is built once per
// batch, whatever the h, lr and stop_gradient axes. `threads` <= 0: OpenMP's default.
void store_theory_diagnostics(const SweepSpec& spec, const Grid& grid, BatchOutput& out, int threads = 0);

} // namespace collapse::theory
