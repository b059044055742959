// Small dense kernels on the rows of one trajectory's matrices, in the form
// the hardware likes: a row of the output is a running sum of scalar x row
// products ("axpy along the contiguous index"), never a dot product, so the
// sums need no reduction across lanes and run as vector multiply-adds. Rows
// are handled in register blocks, so one load of a matrix row feeds several
// accumulators. Dim is the row length when known at compile time (8, 16, 32,
// 64), or 0 for any length; the two give identical bits, since every output
// element is the same sequence of operations (simd_pack.hpp).
#pragma once

#include "collapse/model/hd.hpp"
#include "collapse/model/simd_pack.hpp"

namespace collapse::rows {

// The longest row the kernels hold on the stack (validate.hpp enforces d <= 128).
inline constexpr int max_row = 128;

// Labels are transposed into rows of this many entries, classes padded up
// to it, so the nearest-label search runs along classes. A constant, not
// the vector width: the workspace layout must be the same for every build.
inline constexpr int label_lanes = 16;
static_assert(label_lanes == 16, "WorkspaceLayout::labels_transposed pads classes to 16");

COLLAPSE_HD inline int padded_classes(int classes) { return (classes + label_lanes - 1) / label_lanes * label_lanes; }

constexpr int clamp_block(int value) { return value < 1 ? 1 : (value > 8 ? 8 : value); }

// How rows of Dim Reals map onto packs and register blocks.
template <class Real, int Dim>
struct RowShape {
    static constexpr int lanes = simd::row_lanes<Real, Dim>;
    static constexpr int packs = Dim > 0 ? Dim / lanes : 0; // per row; 0 = known at run time
    static constexpr int pack_capacity = Dim > 0 ? packs : max_row;
    static constexpr int row_capacity = Dim > 0 ? Dim : max_row;
    // Rows per register block: accumulators take half the vector registers.
    static constexpr int block = Dim > 0 && lanes > 1 ? clamp_block(simd::vector_registers / 2 / packs) : 1;
    using Lanes = simd::Pack<Real, lanes>;
    COLLAPSE_HD static int pack_count(int dim) { return Dim > 0 ? packs : dim; }
};

// `Block` rows from `first`: out[r][:] (+)= sum_{k < inner} a(r, k) * b[k][:], k ascending,
// with a(r, k) = a[r * a_row + k * a_inner] and b row-major (inner x dim).
template <class Real, int Dim, int Block>
COLLAPSE_HD COLLAPSE_INLINE void rows_times_matrix_block(const Real* a, long a_row, long a_inner, const Real* b, int inner,
                                                         int first, int dim, Real* out, bool accumulate) {
    using Shape = RowShape<Real, Dim>;
    using P = typename Shape::Lanes;
    constexpr int L = Shape::lanes;
    const int packs = Shape::pack_count(dim);
    P sum[Block][Shape::pack_capacity];
    simd::repeat<Block>(Block, [&](int s) {
        Real* row = out + static_cast<long>(first + s) * dim;
        simd::repeat<Shape::packs>(packs, [&](int j) { sum[s][j] = accumulate ? P::load(row + j * L) : P::broadcast(Real(0)); });
    });
    for (int k = 0; k < inner; ++k) {
        const Real* b_row = b + static_cast<long>(k) * dim;
        simd::repeat<Block>(Block, [&](int s) {
            const P weight = P::broadcast(a[static_cast<long>(first + s) * a_row + k * a_inner]);
            simd::repeat<Shape::packs>(packs, [&](int j) { sum[s][j] = multiply_add(weight, P::load(b_row + j * L), sum[s][j]); });
        });
    }
    simd::repeat<Block>(Block, [&](int s) {
        Real* row = out + static_cast<long>(first + s) * dim;
        simd::repeat<Shape::packs>(packs, [&](int j) { sum[s][j].store(row + j * L); });
    });
}

// out (rows x dim) (+)= A B for all rows, A given by strides (see the block version).
template <class Real, int Dim>
COLLAPSE_HD inline void rows_times_matrix(const Real* a, long a_row, long a_inner, const Real* b, int inner, int rows, int dim,
                                          Real* out, bool accumulate) {
    constexpr int block = RowShape<Real, Dim>::block;
    int r = 0;
    for (; r + block <= rows; r += block)
        rows_times_matrix_block<Real, Dim, block>(a, a_row, a_inner, b, inner, r, dim, out, accumulate);
    for (; r < rows; ++r) rows_times_matrix_block<Real, Dim, 1>(a, a_row, a_inner, b, inner, r, dim, out, accumulate);
}

// out (cols x rows) = in (rows x cols) transposed.
template <class Real>
COLLAPSE_HD inline void transpose(const Real* in, int rows, int cols, Real* out) {
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) out[static_cast<long>(c) * rows + r] = in[static_cast<long>(r) * cols + c];
}

// labels (classes x dim) into dim rows of padded_classes(classes) entries, padding zero.
template <class Real>
COLLAPSE_HD inline void transpose_labels(const Real* labels, int classes, int dim, Real* out) {
    const int padded = padded_classes(classes);
    for (int c = 0; c < dim; ++c)
        for (int k = 0; k < padded; ++k) out[c * padded + k] = k < classes ? labels[k * dim + c] : Real(0);
}

// Squared distances from `point` to the labels in `Chunks` packs from class
// `base`, folded into the running (best, best_distance), ties to the lower index.
template <class Real, int Dim, int Chunks>
COLLAPSE_HD COLLAPSE_INLINE void nearest_in_chunks(const Real* point, const Real* labels_transposed, int padded, int base,
                                                   int classes, int dim, int& best, Real& best_distance) {
    constexpr int L = simd::native_lanes<Real> < label_lanes ? simd::native_lanes<Real> : label_lanes;
    using P = simd::Pack<Real, L>;
    P distance[Chunks];
    simd::repeat<Chunks>(Chunks, [&](int q) { distance[q] = P::broadcast(Real(0)); });
    simd::repeat<Dim>(dim, [&](int c) {
        const P component = P::broadcast(point[c]);
        const Real* row = labels_transposed + c * padded + base;
        simd::repeat<Chunks>(Chunks, [&](int q) {
            const P difference = component - P::load(row + q * L);
            distance[q] = multiply_add(difference, difference, distance[q]);
        });
    });
    for (int q = 0; q < Chunks; ++q)
        for (int l = 0; l < L; ++l) {
            const int k = base + q * L + l;
            if (k >= classes) return;
            const Real value = distance[q].lane(l);
            if (k == 0 || value < best_distance) {
                best_distance = value;
                best = k;
            }
        }
}

// Index of the label nearest to `point` (dim entries), ties to the lower
// index. The squared distance to each label is a multiply-add chain over the
// components in order; the labels sit in lanes, so there is no reduction.
template <class Real, int Dim>
COLLAPSE_HD inline int nearest_label(const Real* point, const Real* labels_transposed, int classes, int dim) {
    constexpr int L = simd::native_lanes<Real> < label_lanes ? simd::native_lanes<Real> : label_lanes;
    const int padded = padded_classes(classes);
    const int pack_total = L == 1 ? classes : padded / L;
    int best = 0;
    Real best_distance = 0;
    // Up to four packs of classes per pass over the point, held in registers.
    for (int first = 0; first < pack_total; first += 4) {
        const int count = pack_total - first < 4 ? pack_total - first : 4;
        const int base = first * L;
        if (count == 4) nearest_in_chunks<Real, Dim, 4>(point, labels_transposed, padded, base, classes, dim, best, best_distance);
        else if (count == 3) nearest_in_chunks<Real, Dim, 3>(point, labels_transposed, padded, base, classes, dim, best, best_distance);
        else if (count == 2) nearest_in_chunks<Real, Dim, 2>(point, labels_transposed, padded, base, classes, dim, best, best_distance);
        else nearest_in_chunks<Real, Dim, 1>(point, labels_transposed, padded, base, classes, dim, best, best_distance);
    }
    return best;
}

// Per-component running sums of squares (the loss), one pack per row slice,
// summed across components in order only at the end.
template <class Real, int Dim>
struct SquareSums {
    using Shape = RowShape<Real, Dim>;
    using P = typename Shape::Lanes;
    P lanes[Shape::pack_capacity];

    COLLAPSE_HD explicit SquareSums(int dim) {
        simd::repeat<Shape::packs>(Shape::pack_count(dim), [&](int j) { lanes[j] = P::broadcast(Real(0)); });
    }
    COLLAPSE_HD COLLAPSE_INLINE void add(int j, P value) { lanes[j] = multiply_add(value, value, lanes[j]); }
    COLLAPSE_HD Real total(int dim) const {
        Real sum = 0;
        for (int j = 0; j < Shape::pack_count(dim); ++j)
            for (int l = 0; l < Shape::lanes; ++l) sum += lanes[j].lane(l);
        return sum;
    }
};

} // namespace collapse::rows
