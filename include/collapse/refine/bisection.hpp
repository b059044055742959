// The arithmetic of phase-boundary refinement, free of backends and files:
// where the existing grid brackets a level crossing, how a bracket is halved,
// when it is small enough, and the seed bootstrap of the crossing location.
// docs/refinement.md explains the choices.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace collapse::refine {

// How the axis is bisected.
enum class AxisScale {
    linear,            // arithmetic midpoint
    logarithmic,       // geometric midpoint (a log-spaced lr axis)
    frustrated_count,  // frustration: midpoint of the frustrated count floor(f N + 1/2), f = m / N
};

struct AxisGeometry {
    AxisScale scale = AxisScale::linear;
    int samples = 1; // N, for frustrated_count
};

// Which side of the level a quantity is on; bisection keeps one end on each.
inline bool at_or_above(double quantity, double level) { return quantity >= level; }

// Every adjacent pair (j, j + 1), in axis order, whose quantities are both
// finite and on different sides of `level`: j for each. More than one means
// the quantity is non-monotone along the axis.
std::vector<std::size_t> all_crossings(const std::vector<double>& quantity, double level);

// The first of all_crossings; nullopt when there is none.
std::optional<std::size_t> first_crossing(const std::vector<double>& quantity, double level);

// The next probe strictly inside (a, b) (either order).
double bisection_midpoint(double a, double b, const AxisGeometry& axis);

// True when the bracket needs no further probe: |a - b| <= tol, or for
// frustration when a and b are one frustrated sample apart.
bool bracket_done(double a, double b, double tol, const AxisGeometry& axis);

// The boundary estimate of a finished bracket: its midpoint, except for a
// one-sample frustration bracket, whose quantity jumps exactly at (m + 1/2)/N.
double bracket_estimate(double a, double b, const AxisGeometry& axis);

// Fraction of finished seeds (outcome 0 or 1; -1 = not run) with outcome 1; NaN if none finished.
double seed_fraction(const std::vector<std::int8_t>& outcomes);

// One evaluated point along the axis: its value and each seed's outcome.
struct EvaluatedPoint {
    double value = 0;
    std::vector<std::int8_t> outcomes; // per seed
};

// Standard error of the crossing location from resampling seeds with
// replacement: each resample recomputes the quantity at every evaluated point
// (grid and probes), takes the first crossing in axis order and interpolates
// the level linearly between its two points (in log value on a log axis). The
// SE is the standard deviation over resamples that have a crossing; NaN when
// fewer than half have one. Deterministic (fixed generator seed).
double bootstrap_standard_error(std::vector<EvaluatedPoint> points, bool ascending, double level,
                                const AxisGeometry& axis, int resamples, std::uint64_t generator_seed);

} // namespace collapse::refine
