// The lockstep path's batched products on the device: cuBLAS
// cublasSgemmStridedBatched / cublasDgemmStridedBatched on one stream,
// given a row-major lockstep::GemmBatch (translated by to_column_major,
// which tests/backend/test_lockstep.cpp checks on the CPU). Every cuBLAS
// status other than success becomes a collapse::BackendError naming the
// call and the status (CUBLAS_STATUS_...).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <string>

#include "collapse/lockstep/batched_gemm.hpp"

namespace collapse::cuda {

// "cublasDgemmStridedBatched at kernels/lockstep/cublas_gemm.cpp:40: CUBLAS_STATUS_INVALID_VALUE (...)"
std::string describe_cublas_status(cublasStatus_t status, const char* call, const char* site);
// Throws BackendError("cuBLAS error in " + describe_cublas_status(...)) unless status is success.
void check_cublas(cublasStatus_t status, const char* call, const char* site);

class CublasBatchedGemm {
public:
    // A handle bound to `stream`, on the current device. Throws BackendError.
    explicit CublasBatchedGemm(cudaStream_t stream);
    ~CublasBatchedGemm();
    CublasBatchedGemm(const CublasBatchedGemm&) = delete;
    CublasBatchedGemm& operator=(const CublasBatchedGemm&) = delete;

    void operator()(const lockstep::GemmBatch<float>& batch) const;
    void operator()(const lockstep::GemmBatch<double>& batch) const;

private:
    cublasHandle_t handle_ = nullptr;
};

} // namespace collapse::cuda
