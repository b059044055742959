// Reductions of a team whose lanes exchange registers instead of meeting in
// shared memory: a CUDA warp (kernels/warp_kernel.cu, __shfl_xor_sync) and
// its host emulation (tests/backend/warp_emulation.hpp). Both take the same
// butterfly, so they give the same bits.
//
// At each level (offset size/2, ..., 2, 1) lanes l and l ^ offset combine the
// pair as (lower lane's value, upper lane's value). Both lanes of a pair
// therefore compute the same expression and, by induction, every lane ends
// with the same bits. The tree is fixed by the team size alone, so the result
// does not depend on which trajectory, block or SM the warp runs.
#pragma once

#include "collapse/model/hd.hpp"

namespace collapse {

// Lanes in a warp team; the butterflies below assume a power of two.
inline constexpr int warp_lanes = 32;

struct SumCombine {
    COLLAPSE_HD double operator()(double lower, double upper) const { return lower + upper; }
};

// NaN never reaches it (minimum_pairwise_distance starts from +inf and keeps
// only values that compare smaller), but the order is fixed all the same.
struct MinCombine {
    COLLAPSE_HD double operator()(double lower, double upper) const { return upper < lower ? upper : lower; }
};

// One level of the butterfly, seen from lane `rank` that holds `mine` and
// received `partner` from lane rank ^ offset.
template <class Combine>
COLLAPSE_HD inline double butterfly_level(int rank, int offset, double mine, double partner, Combine combine) {
    return (rank & offset) != 0 ? combine(partner, mine) : combine(mine, partner);
}

// The whole butterfly for one lane, given an exchange(value, offset) that
// returns lane rank ^ offset's value (a warp shuffle on the device).
template <class Exchange, class Combine>
COLLAPSE_HD inline double butterfly_reduce(int rank, int size, double value, Exchange&& exchange, Combine combine) {
    for (int offset = size / 2; offset > 0; offset /= 2) value = butterfly_level(rank, offset, value, exchange(value, offset), combine);
    return value;
}

// The same butterfly over all lanes' values at once (values[0..size) is
// overwritten): what each lane holds after butterfly_reduce. The host
// emulation uses it so that a reduction costs two barriers, not two per level.
template <class Combine>
COLLAPSE_HD inline double butterfly_reduce_all(double* values, int size, Combine combine) {
    double next[warp_lanes];
    for (int offset = size / 2; offset > 0; offset /= 2) {
        for (int lane = 0; lane < size; ++lane)
            next[lane] = butterfly_level(lane, offset, values[lane], values[lane ^ offset], combine);
        for (int lane = 0; lane < size; ++lane) values[lane] = next[lane];
    }
    return values[0];
}

} // namespace collapse
