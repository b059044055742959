// The lockstep path's batched products on the device: cublasLtMatmul with
// strided-batched layouts on one stream, given a row-major
// lockstep::GemmBatch (translated by lockstep::to_lt_matmul, which
// tests/backend/test_lockstep.cpp checks on the CPU).
//
// Batch-count invariance (SPEC §5): cuBLAS picks its kernel, and with it the
// summation order, per call, and may pick another one for another batch
// count. Here the algorithm is chosen once per product shape
// (cublasLtMatmulAlgoGetHeuristic with the batch count fixed at
// kPinnedReferenceBatchCount, the other layout attributes as called: rows,
// columns, leading dimensions, batch strides, transposes, alignment, β = 0
// or not) and that same algorithm runs every batch and lane count.
// cublasLtMatmulAlgoCheck confirms it for each count; a refusal is a
// BackendError naming the shape and count, never a silent change of
// algorithm. Compute types CUBLAS_COMPUTE_32F_PEDANTIC / 64F_PEDANTIC (no
// TF32), and only algorithms with reduction scheme NONE: each dot product in
// one sequence, no split-K partial sums, so no workspace that grows with the
// count. The workspace is allocated once, in the constructor, so a product
// allocates nothing under CUDA Graph capture.
//
// Every cuBLAS status other than success becomes a collapse::BackendError
// naming the call and the status (CUBLAS_STATUS_...).
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <memory>
#include <string>

#include "collapse/lockstep/batched_gemm.hpp"

namespace collapse::cuda {

// "cublasLtMatmul(...) at kernels/lockstep/cublaslt_gemm.cpp:40: CUBLAS_STATUS_INVALID_VALUE (...)"
std::string describe_cublas_status(cublasStatus_t status, const char* call, const char* site);
// Throws BackendError("cuBLAS error in " + describe_cublas_status(...)) unless status is success.
void check_cublas(cublasStatus_t status, const char* call, const char* site);

// The batch count the algorithm of each shape is chosen at.
inline constexpr int kPinnedReferenceBatchCount = 64;

class CublasLtBatchedGemm {
public:
    // A cuBLASLt handle and `workspace_bytes` of device workspace, for
    // products on `stream` on the current device. Throws BackendError.
    explicit CublasLtBatchedGemm(cudaStream_t stream, std::size_t workspace_bytes = std::size_t{32} << 20);
    ~CublasLtBatchedGemm();
    CublasLtBatchedGemm(const CublasLtBatchedGemm&) = delete;
    CublasLtBatchedGemm& operator=(const CublasLtBatchedGemm&) = delete;

    void operator()(const lockstep::GemmBatch<float>& batch) const;
    void operator()(const lockstep::GemmBatch<double>& batch) const;

    // Shapes whose algorithm has been pinned so far (diagnostics, tests).
    std::size_t pinned_shapes() const;

private:
    struct State; // handle, workspace, the pinned algorithms
    std::unique_ptr<State> state_;
};

} // namespace collapse::cuda
