// The record points of SPEC §3: step 0 plus record_points - 1 log-spaced
// steps from 1 to max_steps, rounded and deduplicated (so there may be fewer
// than record_points when max_steps is small). Backends and the HDF5 writer
// must agree on them, hence one definition.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "collapse/config.hpp"

namespace collapse {

inline std::vector<std::int64_t> record_steps(std::int64_t max_steps, int record_points) {
    std::vector<std::int64_t> steps{0};
    const int log_spaced = record_points - 1;
    const double log_last = std::log(static_cast<double>(max_steps));
    for (int j = 0; j < log_spaced; ++j) {
        const double fraction = log_spaced == 1 ? 1.0 : static_cast<double>(j) / (log_spaced - 1);
        const auto step = static_cast<std::int64_t>(std::llround(std::exp(fraction * log_last)));
        steps.push_back(std::clamp<std::int64_t>(step, 1, max_steps));
    }
    std::sort(steps.begin(), steps.end());
    steps.erase(std::unique(steps.begin(), steps.end()), steps.end());
    if (steps.size() > 1) steps.back() = max_steps; // exp(log(x)) may round below max_steps
    return steps;
}

// Every K steps: 0, K, 2K, ..., with max_steps always the last point.
inline std::vector<std::int64_t> evenly_spaced_steps(std::int64_t max_steps, std::int64_t every) {
    std::vector<std::int64_t> steps;
    for (std::int64_t step = 0; step < max_steps; step += every) steps.push_back(step);
    steps.push_back(max_steps);
    return steps;
}

// The record points of a sweep: output.record_every when set, else log-spaced.
inline std::vector<std::int64_t> record_steps(const SweepSpec& spec) {
    if (spec.output.record_every > 0) return evenly_spaced_steps(spec.integrator.max_steps, spec.output.record_every);
    return record_steps(spec.integrator.max_steps, spec.output.record_points);
}

} // namespace collapse
