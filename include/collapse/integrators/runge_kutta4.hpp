// Classic RK4 on the gradient flow dz/dt = -dL/dz with dt = lr (SPEC §2).
// Generic over the model: `gradient(z, g)` writes dL/dz at z into g (the whole
// team takes part, and g is complete for every thread on return); and over
// the team sharing the trajectory (model/team.hpp).
#pragma once

#include <cstddef>

#include "collapse/model/hd.hpp"
#include "collapse/model/team.hpp"

namespace collapse {

struct RungeKutta4 {
    static constexpr int gradient_evaluations_per_step = 4;
    static constexpr int scratch_vectors = 3; // stage state, stage gradient, weighted sum

    // The caller syncs the team before the state is read again.
    template <class Team, class Real, class GradientFunction>
    COLLAPSE_HD static void step(const Team& team, GradientFunction& gradient, Real* state, const Real* first_slope,
                                 Real dt, std::size_t size, Real* scratch) {
        Real* stage = scratch;
        Real* slope = scratch + size;
        Real* weighted_sum = scratch + 2 * size;
        const Real half = dt / 2;
        const long count = static_cast<long>(size);
        team_for(team, count, [&](long e) {
            weighted_sum[e] = first_slope[e];
            stage[e] = state[e] - half * first_slope[e];
        });
        team.sync();
        gradient(stage, slope);
        team_for(team, count, [&](long e) {
            weighted_sum[e] += 2 * slope[e];
            stage[e] = state[e] - half * slope[e];
        });
        team.sync();
        gradient(stage, slope);
        team_for(team, count, [&](long e) {
            weighted_sum[e] += 2 * slope[e];
            stage[e] = state[e] - dt * slope[e];
        });
        team.sync();
        gradient(stage, slope);
        team_for(team, count, [&](long e) { state[e] -= dt / 6 * (weighted_sum[e] + slope[e]); });
    }
};

} // namespace collapse
