// `collapse-sweep refine`: locate, for every combination of the other grid
// axes, where a seed-averaged quantity crosses a level along one axis, by
// bisection with new trajectories (docs/refinement.md).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "collapse/backend/backend.hpp"
#include "collapse/config.hpp"
#include "collapse/storage/boundary_writer.hpp"

namespace collapse::refine {

enum class Quantity { collapsed_fraction, diverged_fraction };

struct RefineOptions {
    std::string axis = "frustration"; // "frustration" or "lr"
    Quantity quantity = Quantity::collapsed_fraction;
    double level = 0.5;  // in (0, 1)
    double tol = 1e-3;   // bracket width to stop at, in axis units
    int max_rounds = 60; // safety net; log2(width / tol) rounds are needed
    int bootstrap_resamples = 1000;
};

const char* quantity_name(Quantity quantity);

// What one round did, for progress output. Round 0 announces, before it
// starts, the re-run of the sweep's collapsed grid trajectories past collapse
// (diverged_fraction on a sweep that stopped at collapse): `trajectories` of them.
struct RoundReport {
    int round = 0;
    std::int64_t probes = 0;       // boundaries probed this round
    std::int64_t trajectories = 0; // probes x seeds
    std::int64_t still_open = 0;   // brackets not yet done after the round
};

struct RefineReport {
    std::int64_t boundaries = 0;          // combinations of the other axes
    std::int64_t bracketed = 0;           // with a crossing on the grid
    std::int64_t probes = 0;              // probe points run
    std::int64_t trajectories = 0;        // probes x seeds
    std::int64_t dense_trajectories = 0;  // a grid at spacing tol over the axis range, x combinations x seeds
    std::int64_t grid_reruns = 0;         // grid trajectories re-run past collapse (diverged_fraction only)
    std::int64_t non_monotone = 0;        // boundaries whose grid quantity crosses the level more than once
    int rounds = 0;
};

// Refines boundaries of a finished sweep whose spec is `spec` and whose
// /results/status (flat order) is `status`. Every probe round is one
// run_batch call over all open brackets x all seeds (Grid::from_points).
// For diverged_fraction every trajectory it runs ignores stop_on_collapse:
// divergence is the quantity, and a run stopped at collapse cannot show it.
// So when the sweep stopped at collapse, its collapsed grid trajectories are
// re-run past collapse first (report.grid_reruns). Where the grid quantity
// crosses the level more than once, the first crossing in axis order is
// refined and all are recorded (BoundaryTable::crossing_low/high).
// Throws std::invalid_argument for options that do not fit the file (the CLI
// reports those as usage errors).
storage::BoundaryTable refine_boundaries(const SweepSpec& spec, const std::vector<std::int8_t>& status,
                                         Backend& backend, const RefineOptions& options, RefineReport& report,
                                         const std::function<void(const RoundReport&)>& on_round = {});

// A warning naming the boundaries whose quantity is non-monotone along the
// axis (crossings > 1) and their crossing brackets, at most `listed` of them;
// empty when there are none.
std::string non_monotone_warning(const storage::BoundaryTable& table, std::size_t listed = 3);

} // namespace collapse::refine
