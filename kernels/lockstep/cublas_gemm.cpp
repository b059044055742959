#include "lockstep/cublas_gemm.hpp"

#include "collapse/backend/backend.hpp"

#define COLLAPSE_CUBLAS_STRINGIFY_DETAIL(x) #x
#define COLLAPSE_CUBLAS_STRINGIFY(x) COLLAPSE_CUBLAS_STRINGIFY_DETAIL(x)
#define COLLAPSE_CUBLAS_CHECK(call) \
    ::collapse::cuda::check_cublas((call), #call, __FILE__ ":" COLLAPSE_CUBLAS_STRINGIFY(__LINE__))

namespace collapse::cuda {
namespace {

cublasOperation_t operation(bool transpose) { return transpose ? CUBLAS_OP_T : CUBLAS_OP_N; }

// A batch with nothing to compute is not an error (cuBLAS would call some of them one).
template <class Real>
bool empty(const lockstep::GemmBatch<Real>& batch) {
    return batch.count == 0 || batch.m == 0 || batch.n == 0;
}

} // namespace

std::string describe_cublas_status(cublasStatus_t status, const char* call, const char* site) {
    return std::string(call) + " at " + site + ": " + cublasGetStatusName(status) + " (" +
           cublasGetStatusString(status) + ")";
}

void check_cublas(cublasStatus_t status, const char* call, const char* site) {
    if (status == CUBLAS_STATUS_SUCCESS) return;
    (void)cudaGetLastError(); // as check_cuda: do not let a later launch check report this failure again
    throw BackendError("cuBLAS error in " + describe_cublas_status(status, call, site));
}

CublasBatchedGemm::CublasBatchedGemm(cudaStream_t stream) {
    COLLAPSE_CUBLAS_CHECK(cublasCreate(&handle_));
    try {
        COLLAPSE_CUBLAS_CHECK(cublasSetStream(handle_, stream));
        // Results must not depend on timing (SPEC §5): no atomics (the default, stated).
        COLLAPSE_CUBLAS_CHECK(cublasSetAtomicsMode(handle_, CUBLAS_ATOMICS_NOT_ALLOWED));
        // Full precision in float32 too: no TF32 tensor-core products.
        COLLAPSE_CUBLAS_CHECK(cublasSetMathMode(handle_, CUBLAS_PEDANTIC_MATH));
    } catch (...) {
        (void)cublasDestroy(handle_);
        throw;
    }
}

CublasBatchedGemm::~CublasBatchedGemm() {
    if (handle_ != nullptr) (void)cublasDestroy(handle_);
}

void CublasBatchedGemm::operator()(const lockstep::GemmBatch<float>& batch) const {
    if (empty(batch)) return;
    const lockstep::ColumnMajorGemm<float> g = lockstep::to_column_major(batch);
    COLLAPSE_CUBLAS_CHECK(cublasSgemmStridedBatched(
        handle_, operation(g.transpose_first), operation(g.transpose_second), g.m, g.n, g.k, &g.alpha, g.first,
        g.ld_first, g.stride_first, g.second, g.ld_second, g.stride_second, &g.beta, g.c, g.ld_c, g.stride_c, g.count));
}

void CublasBatchedGemm::operator()(const lockstep::GemmBatch<double>& batch) const {
    if (empty(batch)) return;
    const lockstep::ColumnMajorGemm<double> g = lockstep::to_column_major(batch);
    COLLAPSE_CUBLAS_CHECK(cublasDgemmStridedBatched(
        handle_, operation(g.transpose_first), operation(g.transpose_second), g.m, g.n, g.k, &g.alpha, g.first,
        g.ld_first, g.stride_first, g.second, g.ld_second, g.stride_second, &g.beta, g.c, g.ld_c, g.stride_c, g.count));
}

} // namespace collapse::cuda
