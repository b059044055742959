// Full-batch gradient descent, the forward-Euler discretisation of gradient
// flow (SPEC §2). Generic over the model: it only sees flat vectors.
#pragma once

#include <cstddef>

#include "collapse/model/hd.hpp"

namespace collapse {

struct GradientDescent {
    static constexpr int gradient_evaluations_per_step = 1;
    static constexpr int scratch_vectors = 0;

    // z <- z - lr * dL/dz, given the gradient at z that the caller already has.
    template <class Real, class GradientFunction>
    COLLAPSE_HD static void step(GradientFunction&, Real* state, const Real* gradient_at_state, Real lr,
                                 std::size_t size, Real*) {
        for (std::size_t e = 0; e < size; ++e) state[e] -= lr * gradient_at_state[e];
    }
};

} // namespace collapse
