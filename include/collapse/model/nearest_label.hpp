// The accuracy of SPEC §3: for each sample, is the label nearest to W x_i
// (x_i when h = 0) its primary label? Ties go to the lower class index.
//
// The squared distance from point s to label k is a multiply-add chain over
// the components in order; labels sit in lanes (labels_transposed: dim rows
// of padded_classes(K) entries), so no sum crosses lanes, and a block of
// points gives independent chains that share each load of a label row.
// The argmin then scans k upwards keeping the first strict minimum. On x86
// with AVX, for float, the block's distances are transposed so that the scan
// runs over 8 samples at once; the generic scan does the same comparisons one
// sample at a time, so both count the same (tests/core/test_dimension_paths.cpp).
#pragma once

#include "collapse/model/hd.hpp"
#include "collapse/model/row_kernels.hpp"
#include "collapse/model/simd_pack.hpp"

namespace collapse::rows {

// Points per search: independent chains to hide the multiply-add latency.
template <class Real>
inline constexpr int accuracy_block = simd::native_lanes<Real> > 1 ? 8 : 1;

// distance[s] = squared distances from point s to labels [base, base + Lanes).
template <class Real, int Block, int Lanes>
COLLAPSE_HD COLLAPSE_INLINE void label_distances(const Real* points, long point_stride, const Real* labels_transposed,
                                                 int padded, int base, int dim, simd::Pack<Real, Lanes>* distance) {
    using P = simd::Pack<Real, Lanes>;
    simd::repeat<Block>(Block, [&](int s) { distance[s] = P::broadcast(Real(0)); });
    const Real* row = labels_transposed + base;
    COLLAPSE_NO_UNROLL
    for (int c = 0; c < dim; ++c, row += padded) {
        const P label_row = P::load(row);
        simd::repeat<Block>(Block, [&](int s) {
            const P difference = P::broadcast(points[s * point_stride + c]) - label_row;
            distance[s] = multiply_add(difference, difference, distance[s]);
        });
    }
}

// The scan, one sample at a time: (nearest[s], smallest[s]) over classes so far.
template <class Real, int Block, int Lanes>
COLLAPSE_HD COLLAPSE_INLINE void scan_nearest(const simd::Pack<Real, Lanes>* distance, int base, int classes, int* nearest,
                                              Real* smallest) {
    const int valid = classes - base < Lanes ? classes - base : Lanes;
    for (int s = 0; s < Block; ++s) {
        Real lanes[Lanes];
        distance[s].store(lanes);
        int best = base == 0 ? 0 : nearest[s];
        Real best_distance = base == 0 ? lanes[0] : smallest[s];
        for (int l = base == 0 ? 1 : 0; l < valid; ++l) {
            const bool closer = lanes[l] < best_distance; // selects, not branches: the winner is data
            best_distance = closer ? lanes[l] : best_distance;
            best = closer ? base + l : best;
        }
        nearest[s] = best;
        smallest[s] = best_distance;
    }
}

// How many of the Block points have `expected[s]` as nearest label, scanning
// classes [0, classes) in packs of Lanes.
template <class Real, int Block, int Lanes>
COLLAPSE_HD inline int count_nearest_generic(const Real* points, long point_stride, const Real* labels_transposed, int classes,
                                             int dim, const int* expected) {
    const int padded = padded_classes(classes);
    int nearest[Block];
    Real smallest[Block];
    for (int s = 0; s < Block; ++s) {
        nearest[s] = 0;
        smallest[s] = 0;
    }
    simd::Pack<Real, Lanes> distance[Block];
    for (int base = 0; base < classes; base += Lanes) {
        label_distances<Real, Block, Lanes>(points, point_stride, labels_transposed, padded, base, dim, distance);
        scan_nearest<Real, Block, Lanes>(distance, base, classes, nearest, smallest);
    }
    int count = 0;
    for (int s = 0; s < Block; ++s) count += nearest[s] == expected[s];
    return count;
}

#if defined(COLLAPSE_X86_PACKS) && defined(__AVX__)
namespace x86 {

// rows[s] holds classes k of sample s; columns[k] gets sample s in lane s.
inline void transpose_8x4(const __m128* rows, __m256* columns) {
    const __m256 a0 = _mm256_set_m128(rows[4], rows[0]), a1 = _mm256_set_m128(rows[5], rows[1]);
    const __m256 a2 = _mm256_set_m128(rows[6], rows[2]), a3 = _mm256_set_m128(rows[7], rows[3]);
    const __m256 t0 = _mm256_unpacklo_ps(a0, a1), t1 = _mm256_unpackhi_ps(a0, a1);
    const __m256 t2 = _mm256_unpacklo_ps(a2, a3), t3 = _mm256_unpackhi_ps(a2, a3);
    columns[0] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    columns[1] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    columns[2] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    columns[3] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
}

inline void transpose_8x8(const __m256* rows, __m256* columns) {
    __m256 t[8], u[8];
    for (int p = 0; p < 4; ++p) {
        t[2 * p] = _mm256_unpacklo_ps(rows[2 * p], rows[2 * p + 1]);
        t[2 * p + 1] = _mm256_unpackhi_ps(rows[2 * p], rows[2 * p + 1]);
    }
    for (int h = 0; h < 2; ++h) { // samples 0-3, then 4-7
        u[4 * h + 0] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * h + 1] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int k = 0; k < 4; ++k) {
        columns[k] = _mm256_permute2f128_ps(u[k], u[4 + k], 0x20);
        columns[4 + k] = _mm256_permute2f128_ps(u[k], u[4 + k], 0x31);
    }
}

template <int Lanes>
inline void transpose_distances(const simd::Pack<float, Lanes>* distance, __m256* columns) {
    if constexpr (Lanes == 4) {
        __m128 rows[8];
        for (int s = 0; s < 8; ++s) rows[s] = (__m128)distance[s].value;
        transpose_8x4(rows, columns);
    } else if constexpr (Lanes == 8) {
        __m256 rows[8];
        for (int s = 0; s < 8; ++s) rows[s] = (__m256)distance[s].value;
        transpose_8x8(rows, columns);
    } else {
        static_assert(Lanes == 16);
        __m256 low[8], high[8];
        for (int s = 0; s < 8; ++s) {
            const __m512 row = (__m512)distance[s].value;
            low[s] = _mm512_castps512_ps256(row);
            high[s] = _mm512_castps512_ps256(_mm512_shuffle_f32x4(row, row, 0xEE)); // upper half down
        }
        transpose_8x8(low, columns);
        transpose_8x8(high, columns + 8);
    }
}

// The generic scan for 8 samples at once: lane s is sample s.
template <int Lanes>
inline int count_nearest_8(const float* points, long point_stride, const float* labels_transposed, int classes, int dim,
                           const int* expected) {
    const int padded = padded_classes(classes);
    __m256 smallest = _mm256_setzero_ps(), nearest = _mm256_setzero_ps(); // class indices, exact in float
    simd::Pack<float, Lanes> distance[8];
    __m256 columns[Lanes];
    for (int base = 0; base < classes; base += Lanes) {
        label_distances<float, 8, Lanes>(points, point_stride, labels_transposed, padded, base, dim, distance);
        transpose_distances<Lanes>(distance, columns);
        const int valid = classes - base < Lanes ? classes - base : Lanes;
        int first = 0;
        if (base == 0) {
            smallest = columns[0];
            first = 1;
        }
        for (int l = first; l < valid; ++l) {
            const __m256 closer = _mm256_cmp_ps(columns[l], smallest, _CMP_LT_OQ); // false for NaN, as in the scalar scan
            smallest = _mm256_blendv_ps(smallest, columns[l], closer);
            nearest = _mm256_blendv_ps(nearest, _mm256_set1_ps(static_cast<float>(base + l)), closer);
        }
    }
    const __m256 wanted = _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(expected)));
    return __builtin_popcount(static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(nearest, wanted, _CMP_EQ_OQ))));
}

} // namespace x86
#endif

// How many of the Block points have `expected[s]` as their nearest label.
// The pack width follows the class count, so few classes do not pay for a
// full-width vector; widths change no result (lane-wise arithmetic).
template <class Real, int Block, bool AllowVectorScan = true>
COLLAPSE_HD inline int count_nearest_matching(const Real* points, long point_stride, const Real* labels_transposed, int classes,
                                              int dim, const int* expected) {
    constexpr int widest = simd::native_lanes<Real> < label_lanes ? simd::native_lanes<Real> : label_lanes;
#if defined(COLLAPSE_X86_PACKS) && defined(__AVX__)
    if constexpr (AllowVectorScan && Block == 8 && sizeof(Real) == sizeof(float) && widest >= 8) {
        if (classes <= 4) return x86::count_nearest_8<4>(points, point_stride, labels_transposed, classes, dim, expected);
        if (classes <= 8 || widest == 8)
            return x86::count_nearest_8<8>(points, point_stride, labels_transposed, classes, dim, expected);
        return x86::count_nearest_8<widest>(points, point_stride, labels_transposed, classes, dim, expected);
    }
#endif
    if constexpr (widest >= 4)
        if (classes <= 4)
            return count_nearest_generic<Real, Block, 4>(points, point_stride, labels_transposed, classes, dim, expected);
    if constexpr (widest >= 8)
        if (classes <= 8)
            return count_nearest_generic<Real, Block, 8>(points, point_stride, labels_transposed, classes, dim, expected);
    return count_nearest_generic<Real, Block, widest>(points, point_stride, labels_transposed, classes, dim, expected);
}

} // namespace collapse::rows
