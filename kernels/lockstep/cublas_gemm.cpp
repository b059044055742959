#include "lockstep/cublas_gemm.hpp"

#include <dlfcn.h>

#include "collapse/backend/backend.hpp"
#include "lockstep/cublas_search.hpp"

#define COLLAPSE_CUBLAS_STRINGIFY_DETAIL(x) #x
#define COLLAPSE_CUBLAS_STRINGIFY(x) COLLAPSE_CUBLAS_STRINGIFY_DETAIL(x)
#define COLLAPSE_CUBLAS_CHECK(call) \
    ::collapse::cuda::check_cublas((call), #call, __FILE__ ":" COLLAPSE_CUBLAS_STRINGIFY(__LINE__))

namespace collapse::cuda {
namespace {

// libcublas is opened on first use, not linked: loading it (and
// libcublasLt) costs every process ~200 MB of resident memory in
// relocations, `collapse-sweep --help` and CPU-only runs included, and only
// the lockstep path needs it. The toolkit ships no static cuBLAS here.
// cublas_v2.h maps some names to *_v2 symbols; stringifying after macro
// expansion looks up the symbol the header means.
#define COLLAPSE_CUBLAS_SYMBOL(function) COLLAPSE_CUBLAS_STRINGIFY(function)

struct CublasLibrary {
    void* handle = nullptr;
    std::string failure;
    decltype(&cublasCreate) create = nullptr;
    decltype(&cublasDestroy) destroy = nullptr;
    decltype(&cublasSetStream) set_stream = nullptr;
    decltype(&cublasSetAtomicsMode) set_atomics_mode = nullptr;
    decltype(&cublasSetMathMode) set_math_mode = nullptr;
    decltype(&cublasSgemmStridedBatched) sgemm_strided_batched = nullptr;
    decltype(&cublasDgemmStridedBatched) dgemm_strided_batched = nullptr;
    decltype(&cublasGetStatusName) status_name = nullptr;
    decltype(&cublasGetStatusString) status_string = nullptr;

    CublasLibrary() {
        const CublasOpenResult opened =
            open_first_cublas(cublas_candidates(cublas_search_inputs_of_this_process()),
                              [](const std::string& name, std::string& reason) -> void* {
                                  void* library = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
                                  if (library == nullptr) {
                                      const char* error = dlerror();
                                      reason = error != nullptr ? error : "dlopen failed";
                                  }
                                  return library;
                              });
        handle = opened.handle;
        if (handle == nullptr) {
            // The loader's reason for the bare soname, and every other place looked in.
            failure = "cannot load libcublas.so." COLLAPSE_CUBLAS_STRINGIFY(CUBLAS_VER_MAJOR) "; tried " +
                      std::to_string(opened.tried.size()) + " places: " +
                      (opened.tried.empty() ? std::string() : opened.tried.front());
            for (std::size_t t = 1; t < opened.tried.size(); ++t) failure += "; " + opened.tried[t];
            failure += " (set LD_LIBRARY_PATH or CUDA_HOME to the toolkit)";
            return;
        }
        resolve(create, COLLAPSE_CUBLAS_SYMBOL(cublasCreate));
        resolve(destroy, COLLAPSE_CUBLAS_SYMBOL(cublasDestroy));
        resolve(set_stream, COLLAPSE_CUBLAS_SYMBOL(cublasSetStream));
        resolve(set_atomics_mode, COLLAPSE_CUBLAS_SYMBOL(cublasSetAtomicsMode));
        resolve(set_math_mode, COLLAPSE_CUBLAS_SYMBOL(cublasSetMathMode));
        resolve(sgemm_strided_batched, COLLAPSE_CUBLAS_SYMBOL(cublasSgemmStridedBatched));
        resolve(dgemm_strided_batched, COLLAPSE_CUBLAS_SYMBOL(cublasDgemmStridedBatched));
        resolve(status_name, COLLAPSE_CUBLAS_SYMBOL(cublasGetStatusName));
        resolve(status_string, COLLAPSE_CUBLAS_SYMBOL(cublasGetStatusString));
    }

    template <class Function>
    void resolve(Function& function, const char* symbol) {
        function = reinterpret_cast<Function>(dlsym(handle, symbol));
        if (function == nullptr && failure.empty()) failure = std::string("libcublas lacks ") + symbol;
    }
};

// The library, loaded once; throws BackendError when it cannot be used.
const CublasLibrary& cublas() {
    static const CublasLibrary library;
    if (!library.failure.empty()) throw BackendError("cuBLAS unavailable: " + library.failure);
    return library;
}

cublasOperation_t operation(bool transpose) { return transpose ? CUBLAS_OP_T : CUBLAS_OP_N; }

// A batch with nothing to compute is not an error (cuBLAS would call some of them one).
template <class Real>
bool empty(const lockstep::GemmBatch<Real>& batch) {
    return batch.count == 0 || batch.m == 0 || batch.n == 0;
}

} // namespace

std::string describe_cublas_status(cublasStatus_t status, const char* call, const char* site) {
    const CublasLibrary& library = cublas();
    return std::string(call) + " at " + site + ": " + library.status_name(status) + " (" +
           library.status_string(status) + ")";
}

void check_cublas(cublasStatus_t status, const char* call, const char* site) {
    if (status == CUBLAS_STATUS_SUCCESS) return;
    (void)cudaGetLastError(); // as check_cuda: do not let a later launch check report this failure again
    throw BackendError("cuBLAS error in " + describe_cublas_status(status, call, site));
}

CublasBatchedGemm::CublasBatchedGemm(cudaStream_t stream) {
    const CublasLibrary& library = cublas();
    COLLAPSE_CUBLAS_CHECK(library.create(&handle_));
    try {
        COLLAPSE_CUBLAS_CHECK(library.set_stream(handle_, stream));
        // Results must not depend on timing (SPEC §5): no atomics (the default, stated).
        COLLAPSE_CUBLAS_CHECK(library.set_atomics_mode(handle_, CUBLAS_ATOMICS_NOT_ALLOWED));
        // Full precision in float32 too: no TF32 tensor-core products.
        COLLAPSE_CUBLAS_CHECK(library.set_math_mode(handle_, CUBLAS_PEDANTIC_MATH));
    } catch (...) {
        (void)library.destroy(handle_);
        throw;
    }
}

CublasBatchedGemm::~CublasBatchedGemm() {
    if (handle_ != nullptr) (void)cublas().destroy(handle_);
}

namespace {

// cublasSgemmStridedBatched or cublasDgemmStridedBatched, given as `gemm`.
template <class Real, class StridedBatchedGemm>
void run_strided_batched(StridedBatchedGemm gemm, const char* call, cublasHandle_t handle,
                         const lockstep::GemmBatch<Real>& batch) {
    if (empty(batch)) return;
    const lockstep::ColumnMajorGemm<Real> g = lockstep::to_column_major(batch);
    check_cublas(gemm(handle, operation(g.transpose_first), operation(g.transpose_second), g.m, g.n, g.k, &g.alpha,
                      g.first, g.ld_first, g.stride_first, g.second, g.ld_second, g.stride_second, &g.beta, g.c, g.ld_c,
                      g.stride_c, g.count),
                 call, __FILE__ ":" COLLAPSE_CUBLAS_STRINGIFY(__LINE__));
}

} // namespace

void CublasBatchedGemm::operator()(const lockstep::GemmBatch<float>& batch) const {
    run_strided_batched(cublas().sgemm_strided_batched, "cublasSgemmStridedBatched(...)", handle_, batch);
}

void CublasBatchedGemm::operator()(const lockstep::GemmBatch<double>& batch) const {
    run_strided_batched(cublas().dgemm_strided_batched, "cublasDgemmStridedBatched(...)", handle_, batch);
}

} // namespace collapse::cuda
