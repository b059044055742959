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

// Rows after the K class sums that take the sums an unfrustrated sample's
// (weight 0) second pair would add: a power of two (WorkspaceLayout).
inline constexpr int spare_label_rows = 8;
static_assert(spare_label_rows == 8, "WorkspaceLayout::label_sample_sum holds 8 spare rows");

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

// Running sums of squares (the loss). Sample i adds into way i % 4, and
// component c into lane class c % 16 of that way: 64 partial sums, summed in
// a fixed order only at the end. Vector paths add whole packs (a pack of L
// lanes covers L consecutive classes), scalar paths one component at a time,
// and both add the same terms to the same partial sum in the same order. The
// ways keep consecutive samples off one multiply-add chain; the 16 classes
// keep the state small where a pack is one lane (CUDA: 64 Reals per thread).
template <class Real, int Dim>
struct SquareSums {
    static constexpr int ways = 4;
    static constexpr int lane_classes = 16;
    using Shape = RowShape<Real, Dim>;
    using P = typename Shape::Lanes;
    static constexpr int slots = lane_classes / Shape::lanes; // packs per way
    static_assert(lane_classes % Shape::lanes == 0, "a pack must cover whole lane classes");
    P lanes[ways][slots];

    COLLAPSE_HD explicit SquareSums(int) {
        for (int w = 0; w < ways; ++w)
            for (int q = 0; q < slots; ++q) lanes[w][q] = P::broadcast(Real(0));
    }
    // value: pack j of a row (components j L .. j L + L - 1)
    COLLAPSE_HD COLLAPSE_INLINE void add(int way, int j, P value) {
        P& sum = lanes[way][j % slots];
        sum = multiply_add(value, value, sum);
    }
    COLLAPSE_HD Real total(int) const {
        Real sum = 0;
        for (int w = 0; w < ways; ++w)
            for (int q = 0; q < lane_classes; ++q) sum += lanes[w][q / Shape::lanes].lane(q % Shape::lanes);
        return sum;
    }
};

} // namespace collapse::rows
