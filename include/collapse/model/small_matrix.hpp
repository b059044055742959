// Dense kernels on the d x d and d x h matrices of one trajectory. d is
// typically 8-64, so these are plain loops the compiler vectorises along the
// contiguous index; they are the scalar reference that tuned paths must match.
#pragma once

#include "collapse/model/hd.hpp"

namespace collapse::small_matrix {

// out = M v, M row-major rows x cols.
template <class Real>
COLLAPSE_HD inline void multiply(const Real* matrix, const Real* vector, Real* out, int rows, int cols) {
    for (int r = 0; r < rows; ++r) {
        Real sum = 0;
        for (int c = 0; c < cols; ++c) sum += matrix[r * cols + c] * vector[c];
        out[r] = sum;
    }
}

// out += M^T v, M row-major rows x cols, v of length rows.
template <class Real>
COLLAPSE_HD inline void add_transposed_product(const Real* matrix, const Real* vector, Real* out, int rows, int cols) {
    for (int r = 0; r < rows; ++r) {
        const Real weight = vector[r];
        for (int c = 0; c < cols; ++c) out[c] += weight * matrix[r * cols + c];
    }
}

// M += a b^T, a of length rows, b of length cols.
template <class Real>
COLLAPSE_HD inline void add_outer_product(Real* matrix, const Real* a, const Real* b, int rows, int cols) {
    for (int r = 0; r < rows; ++r) {
        const Real weight = a[r];
        for (int c = 0; c < cols; ++c) matrix[r * cols + c] += weight * b[c];
    }
}

// C = A B with A rows x inner, B inner x cols.
template <class Real>
COLLAPSE_HD inline void product(const Real* a, const Real* b, Real* out, int rows, int inner, int cols) {
    for (int r = 0; r < rows; ++r) {
        for (int c = 0; c < cols; ++c) out[r * cols + c] = 0;
        for (int k = 0; k < inner; ++k) {
            const Real weight = a[r * inner + k];
            for (int c = 0; c < cols; ++c) out[r * cols + c] += weight * b[k * cols + c];
        }
    }
}

template <class Real>
COLLAPSE_HD inline Real squared_distance(const Real* a, const Real* b, int length) {
    Real sum = 0;
    for (int c = 0; c < length; ++c) {
        const Real difference = a[c] - b[c];
        sum += difference * difference;
    }
    return sum;
}

template <class Real>
COLLAPSE_HD inline void fill(Real* out, Real value, long length) {
    for (long c = 0; c < length; ++c) out[c] = value;
}

} // namespace collapse::small_matrix
