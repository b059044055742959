// Classic RK4 on the gradient flow dz/dt = -dL/dz with dt = lr (SPEC §2).
// Generic over the model: `gradient(z, g)` writes dL/dz at z into g.
#pragma once

#include <cstddef>

#include "collapse/model/hd.hpp"

namespace collapse {

struct RungeKutta4 {
    static constexpr int gradient_evaluations_per_step = 4;
    static constexpr int scratch_vectors = 3; // stage state, stage gradient, weighted sum

    template <class Real, class GradientFunction>
    COLLAPSE_HD static void step(GradientFunction& gradient, Real* state, const Real* first_slope, Real dt,
                                 std::size_t size, Real* scratch) {
        Real* stage = scratch;
        Real* slope = scratch + size;
        Real* weighted_sum = scratch + 2 * size;
        const Real half = dt / 2;
        for (std::size_t e = 0; e < size; ++e) {
            weighted_sum[e] = first_slope[e];
            stage[e] = state[e] - half * first_slope[e];
        }
        gradient(stage, slope);
        for (std::size_t e = 0; e < size; ++e) {
            weighted_sum[e] += 2 * slope[e];
            stage[e] = state[e] - half * slope[e];
        }
        gradient(stage, slope);
        for (std::size_t e = 0; e < size; ++e) {
            weighted_sum[e] += 2 * slope[e];
            stage[e] = state[e] - dt * slope[e];
        }
        gradient(stage, slope);
        for (std::size_t e = 0; e < size; ++e) state[e] -= dt / 6 * (weighted_sum[e] + slope[e]);
    }
};

} // namespace collapse
