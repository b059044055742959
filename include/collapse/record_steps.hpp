// The record points of SPEC §3: step 0 plus record_points - 1 log-spaced
// steps from 1 to max_steps, rounded and deduplicated (so there may be fewer
// than record_points when max_steps is small). Backends and the HDF5 writer
// must agree on them, hence one definition.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

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

} // namespace collapse
