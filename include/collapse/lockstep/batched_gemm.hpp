// Strided-batched matrix products for the lockstep path (docs/cuda-backend.md,
// "Large states: lockstep cuBLAS path"). One description of a batch of
// products, GemmBatch, in row-major terms, and two implementations of it:
// CpuBatchedGemm here (plain loops, the reference the tests use) and
// cuda::CublasLtBatchedGemm (kernels/lockstep/cublaslt_gemm.hpp). cuBLAS is
// column-major; to_column_major gives the arguments of the equivalent
// column-major strided-batched product, and to_lt_matmul the matrix layouts
// (rows, columns, leading dimension, batch count and stride) and transposes
// of the cublasLtMatmul call; the tests check both against column-major
// references on the CPU.
#pragma once

#include <cstdint>

namespace collapse::lockstep {

enum class GemmOp { none, transpose };

// For i < count: C_i = alpha * op(A_i) * op(B_i) + beta * C_i, every matrix
// row-major, op(A_i) m x k, op(B_i) k x n, C_i m x n. X_i starts at
// x + i * stride_x; ld_x is the row stride of X as stored (before op).
// With beta == 0, C is not read (BLAS semantics: NaN there is overwritten).
template <class Real>
struct GemmBatch {
    GemmOp op_a = GemmOp::none, op_b = GemmOp::none;
    int m = 0, n = 0, k = 0;
    Real alpha = 1;
    const Real* a = nullptr;
    int ld_a = 0;
    std::int64_t stride_a = 0;
    const Real* b = nullptr;
    int ld_b = 0;
    std::int64_t stride_b = 0;
    Real beta = 0;
    Real* c = nullptr;
    int ld_c = 0;
    std::int64_t stride_c = 0;
    int count = 0;
};

// The plain-loop reference: each entry a sum over p in increasing order,
// then alpha * sum + beta * c.
struct CpuBatchedGemm {
    template <class Real>
    void operator()(const GemmBatch<Real>& g) const {
        for (int i = 0; i < g.count; ++i) {
            const Real* a = g.a + i * g.stride_a;
            const Real* b = g.b + i * g.stride_b;
            Real* c = g.c + i * g.stride_c;
            for (int row = 0; row < g.m; ++row)
                for (int col = 0; col < g.n; ++col) {
                    Real sum = 0;
                    for (int p = 0; p < g.k; ++p) {
                        const Real a_value = g.op_a == GemmOp::none ? a[static_cast<std::int64_t>(row) * g.ld_a + p]
                                                                    : a[static_cast<std::int64_t>(p) * g.ld_a + row];
                        const Real b_value = g.op_b == GemmOp::none ? b[static_cast<std::int64_t>(p) * g.ld_b + col]
                                                                    : b[static_cast<std::int64_t>(col) * g.ld_b + p];
                        sum += a_value * b_value;
                    }
                    Real& out = c[static_cast<std::int64_t>(row) * g.ld_c + col];
                    out = g.beta == Real(0) ? g.alpha * sum : g.alpha * sum + g.beta * out;
                }
        }
    }
};

// The arguments of cublas<t>gemmStridedBatched(handle, transa, transb, m, n,
// k, alpha, A, lda, strideA, B, ldb, strideB, beta, C, ldc, strideC, count),
// column-major. A row-major matrix is its transpose in column-major, so
// row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: the
// operands swap, m and n swap, and each op flag stays what it was.
template <class Real>
struct ColumnMajorGemm {
    bool transpose_first = false, transpose_second = false;
    int m = 0, n = 0, k = 0;
    Real alpha = 1;
    const Real* first = nullptr;
    int ld_first = 0;
    std::int64_t stride_first = 0;
    const Real* second = nullptr;
    int ld_second = 0;
    std::int64_t stride_second = 0;
    Real beta = 0;
    Real* c = nullptr;
    int ld_c = 0;
    std::int64_t stride_c = 0;
    int count = 0;
};

template <class Real>
ColumnMajorGemm<Real> to_column_major(const GemmBatch<Real>& g) {
    ColumnMajorGemm<Real> call;
    call.transpose_first = g.op_b == GemmOp::transpose;
    call.transpose_second = g.op_a == GemmOp::transpose;
    call.m = g.n;
    call.n = g.m;
    call.k = g.k;
    call.alpha = g.alpha;
    call.first = g.b;
    call.ld_first = g.ld_b;
    call.stride_first = g.stride_b;
    call.second = g.a;
    call.ld_second = g.ld_a;
    call.stride_second = g.stride_a;
    call.beta = g.beta;
    call.c = g.c;
    call.ld_c = g.ld_c;
    call.stride_c = g.stride_c;
    call.count = g.count;
    return call;
}

// One matrix of a cublasLtMatmul call as its cublasLtMatrixLayout says:
// column-major, rows x columns as stored (before the op), leading dimension,
// CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT and _STRIDED_BATCH_OFFSET (elements).
struct LtMatrixLayout {
    int rows = 0, columns = 0, ld = 0;
    int batch_count = 0;
    std::int64_t batch_stride = 0;
};

// cublasLtMatmul(D = alpha op(A) op(B) + beta C) with C = D in place:
// CUBLASLT_MATMUL_DESC_TRANSA/TRANSB and the three layouts.
template <class Real>
struct LtMatmul {
    bool transpose_a = false, transpose_b = false;
    LtMatrixLayout a, b, c;
    Real alpha = 1, beta = 0;
    const Real* a_data = nullptr;
    const Real* b_data = nullptr;
    Real* c_data = nullptr;
};

template <class Real>
LtMatmul<Real> to_lt_matmul(const GemmBatch<Real>& g) {
    const ColumnMajorGemm<Real> call = to_column_major(g);
    LtMatmul<Real> lt;
    lt.transpose_a = call.transpose_first;
    lt.transpose_b = call.transpose_second;
    // op(A) is m x k, so A as stored is k x m when transposed; likewise B (k x n).
    lt.a = {call.transpose_first ? call.k : call.m, call.transpose_first ? call.m : call.k, call.ld_first, call.count,
            call.stride_first};
    lt.b = {call.transpose_second ? call.n : call.k, call.transpose_second ? call.k : call.n, call.ld_second, call.count,
            call.stride_second};
    lt.c = {call.m, call.n, call.ld_c, call.count, call.stride_c};
    lt.alpha = call.alpha;
    lt.beta = call.beta;
    lt.a_data = call.first;
    lt.b_data = call.second;
    lt.c_data = call.c;
    return lt;
}

} // namespace collapse::lockstep
