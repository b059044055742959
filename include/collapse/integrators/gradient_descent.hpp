// Full-batch gradient descent, the forward-Euler discretisation of gradient
// flow (SPEC §2). Generic over the model (it only sees flat vectors) and over
// the team of threads that shares the trajectory (model/team.hpp).
#pragma once

#include <cstddef>

#include "collapse/model/hd.hpp"
#include "collapse/model/team.hpp"

namespace collapse {

struct GradientDescent {
    static constexpr int gradient_evaluations_per_step = 1;
    static constexpr int scratch_vectors = 0;

    // z <- z - lr * dL/dz, given the gradient at z that the caller already
    // has. The caller syncs the team before the state is read again.
    template <class Team, class Real, class GradientFunction>
    COLLAPSE_HD static void step(const Team& team, GradientFunction&, Real* state, const Real* gradient_at_state, Real lr,
                                 std::size_t size, Real*) {
        team_for(team, static_cast<long>(size), [&](long e) { state[e] -= lr * gradient_at_state[e]; });
    }
};

} // namespace collapse
