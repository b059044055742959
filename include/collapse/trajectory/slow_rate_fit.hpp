// The measured slow_rate (SPEC §3) and the window it is fitted over
// (docs/format.md, "The slow_rate fit window"). A trace that has reached the
// run precision's round-off floor, or that has stopped changing because the
// updates round away, says nothing about the rate, so the window ends before
// the first such point: it is the second half (by step) of the recorded
// points up to there. The same window is then applied to the exact theory
// trace (theory_window_rate), which makes the two numbers comparable.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace collapse {

// How far above the precision floor a point must lie, in units of the run
// precision's epsilon times the state's scale (ulps). Round-off enters every
// step and accumulates in the decaying mode over its relaxation time,
// n = 1/(lr * rate) steps, so the floor grows with n: measured plateaus sat at
// 0.07-0.3 n ulps (and at 25-135 ulps for n ~ 1000 in float64), and the
// traces left the exact solution by 10% at up to 1.1 n ulps (docs/format.md,
// "The slow_rate fit window"). A point must lie above
// max(slow_rate_floor_ulps, slow_rate_relaxation_ulps * n) ulps.
inline constexpr double slow_rate_floor_ulps = 512;
inline constexpr double slow_rate_relaxation_ulps = 2;

// Relative change between consecutive record points at or below which a trace
// "has stopped changing" (the state froze: every update rounded away).
inline constexpr double slow_rate_stall_ulps = 2;

struct SlowRateWindow {
    int first = -1, last = -1;     // record indices, inclusive; -1 when there is no window
    std::int64_t first_step = -1, last_step = -1;
    bool valid() const { return first >= 0; }
};

// The label_distance level (D/D_ref) at or below which a run of precision
// epsilon `epsilon` is at its floor: slow_rate_floor_ulps * epsilon * scale,
// with `scale` the largest label-embedding norm of the final state divided by
// D_ref. 0 (no floor) when the scale is not finite (a diverged state).
inline double slow_rate_floor(double epsilon, double scale_over_reference) {
    if (!std::isfinite(scale_over_reference) || !(scale_over_reference >= 0)) return 0.0;
    return slow_rate_floor_ulps * epsilon * scale_over_reference;
}

// The fit window over a label_distance trace recorded at `steps` (count
// points, NaN after final_step). Usable points run from step 0 up to the first
// point that is not finite, is at or below `floor` or lies past final_step,
// less the trailing points that differ from their predecessor by at most
// slow_rate_stall_ulps * epsilon relatively (a state that froze stays frozen;
// a flat stretch followed by decay is kept: the minimum distance can sit on a
// pair that does not decay until a decaying pair passes below it). The
// window is the usable points with 2 * step >= the last usable step. Fewer
// than 3 points: no window.
inline SlowRateWindow slow_rate_window(const std::int64_t* steps, const double* trace, int count,
                                       std::int64_t final_step, double floor, double epsilon) {
    int end = -1; // last usable index
    for (int j = 0; j < count; ++j) {
        const double value = trace[j];
        if (steps[j] > final_step || !std::isfinite(value) || !(value > floor)) break;
        end = j;
    }
    while (end > 0 && std::abs(trace[end] - trace[end - 1]) <= slow_rate_stall_ulps * epsilon * trace[end]) --end;
    SlowRateWindow window;
    if (end < 0) return window;
    int first = end;
    while (first > 0 && 2 * steps[first - 1] >= steps[end]) --first;
    if (end - first + 1 < 3) return window;
    window.first = first;
    window.last = end;
    window.first_step = steps[first];
    window.last_step = steps[end];
    return window;
}

// Minus the least-squares slope of ln(trace) against t = lr * step over the
// window's points; NaN without a window or with a non-positive value in it.
inline double fitted_rate(const std::int64_t* steps, const double* trace, const SlowRateWindow& window, double lr) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    if (!window.valid()) return nan;
    double count = 0, sum_t = 0, sum_v = 0;
    for (int j = window.first; j <= window.last; ++j) {
        if (!(trace[j] > 0) || !std::isfinite(trace[j])) return nan;
        count += 1;
        sum_t += lr * static_cast<double>(steps[j]);
        sum_v += std::log(trace[j]);
    }
    // Centred sums: the slope is then not lost to cancellation when t is large.
    const double mean_t = sum_t / count, mean_v = sum_v / count;
    double sum_tt = 0, sum_tv = 0;
    for (int j = window.first; j <= window.last; ++j) {
        const double t = lr * static_cast<double>(steps[j]) - mean_t;
        sum_tt += t * t;
        sum_tv += t * (std::log(trace[j]) - mean_v);
    }
    if (!(sum_tt > 0)) return nan;
    return -sum_tv / sum_tt;
}

// The largest Euclidean norm of `rows` row-major vectors of length `columns`:
// the state's scale that sets its round-off (the final label embeddings).
inline double largest_row_norm(const double* values, int rows, int columns) {
    double largest = 0;
    for (int r = 0; r < rows; ++r) {
        double squared = 0;
        for (int c = 0; c < columns; ++c) squared += values[r * columns + c] * values[r * columns + c];
        largest = std::max(largest, std::sqrt(squared));
    }
    return largest;
}

struct SlowRateFit {
    double rate = std::numeric_limits<double>::quiet_NaN();
    SlowRateWindow window;
};

// slow_rate of one trajectory: its trace, its final label embeddings (K x d),
// D_ref and the run precision's epsilon give the floor, then the window and
// the fit. Two passes: the first, with the fixed floor, gives the rate and so
// the relaxation time n; the second raises the floor to
// slow_rate_relaxation_ulps * n ulps where that is higher. A first pass
// spoiled by the floor underestimates the rate, which only raises the floor.
// n is capped at the last usable step: round-off cannot accumulate longer.
inline SlowRateFit fit_slow_rate(const std::int64_t* steps, const double* trace, int count, std::int64_t final_step,
                                 double lr, double epsilon, const double* final_labels, int classes, int dim,
                                 double reference_distance) {
    const double scale = largest_row_norm(final_labels, classes, dim) / reference_distance;
    const double fixed_floor = slow_rate_floor(epsilon, scale);
    SlowRateFit fit;
    fit.window = slow_rate_window(steps, trace, count, final_step, fixed_floor, epsilon);
    fit.rate = fitted_rate(steps, trace, fit.window, lr);
    if (!(fit.rate > 0) || !(fixed_floor > 0)) return fit;
    const double relaxation_steps = std::min(1.0 / (lr * fit.rate), static_cast<double>(fit.window.last_step));
    const double floor = fixed_floor * std::max(1.0, slow_rate_relaxation_ulps * relaxation_steps / slow_rate_floor_ulps);
    if (floor == fixed_floor) return fit;
    fit.window = slow_rate_window(steps, trace, count, final_step, floor, epsilon);
    fit.rate = fitted_rate(steps, trace, fit.window, lr);
    return fit;
}

} // namespace collapse
