// Label-geometry observables of SPEC §3, shared by both backends.
#pragma once

#include <cmath>

#include "collapse/model/hd.hpp"
#include "collapse/model/small_matrix.hpp"
#include "collapse/model/team.hpp"

namespace collapse {

// min over k != l of ||v_k - v_l|| for K row vectors of length d, the
// pairs shared over a team of threads (team.hpp). The minimum does not
// depend on the order, so every team size gives the same bits.
template <class Real, class Team>
COLLAPSE_HD inline Real minimum_pairwise_distance(const Team& team, const Real* vectors, int count, int dim) {
    Real smallest = INFINITY;
    int pair = 0;
    for (int k = 0; k < count; ++k)
        for (int l = k + 1; l < count; ++l, ++pair) {
            if (pair % team.size != team.rank) continue;
            const Real distance = small_matrix::squared_distance(vectors + k * dim, vectors + l * dim, dim);
            if (distance < smallest) smallest = distance;
        }
    return std::sqrt(static_cast<Real>(team.min(static_cast<double>(smallest))));
}

template <class Real>
COLLAPSE_HD inline Real minimum_pairwise_distance(const Real* vectors, int count, int dim) {
    return minimum_pairwise_distance(SoloTeam{}, vectors, count, dim);
}

} // namespace collapse
