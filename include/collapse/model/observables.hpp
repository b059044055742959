// Label-geometry observables of SPEC §3, shared by both backends.
#pragma once

#include <cmath>

#include "collapse/model/hd.hpp"
#include "collapse/model/small_matrix.hpp"

namespace collapse {

// min over k != l of ||v_k - v_l|| for K row vectors of length d.
template <class Real>
COLLAPSE_HD inline Real minimum_pairwise_distance(const Real* vectors, int count, int dim) {
    Real smallest = INFINITY;
    for (int k = 0; k < count; ++k)
        for (int l = k + 1; l < count; ++l) {
            const Real distance = small_matrix::squared_distance(vectors + k * dim, vectors + l * dim, dim);
            if (distance < smallest) smallest = distance;
        }
    return std::sqrt(smallest);
}

} // namespace collapse
