#include "lockstep/cublaslt_gemm.hpp"

#include <dlfcn.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "collapse/backend/backend.hpp"
#include "cuda_check.hpp"
#include "lockstep/cublas_search.hpp"

// The API's name (the library's functions are called through pointers) and file:line go into the message.
#define COLLAPSE_CUBLASLT_CHECK(api, call) \
    ::collapse::cuda::check_cublas((call), api "(...)", __FILE__ ":" COLLAPSE_CUDA_STRINGIFY(__LINE__))

namespace collapse::cuda {
namespace {

// libcublasLt is opened on first use, not linked: loading it costs every
// process ~200 MB of resident memory in relocations, `collapse-sweep
// --help` and CPU-only runs included, and only the lockstep path needs it.
// The toolkit ships no static cuBLAS here. Same search as libcublas had
// (cublas_search.hpp): the loader first, then the toolkit's lib64.
struct CublasLtLibrary {
    void* handle = nullptr;
    std::string failure;
    decltype(&cublasLtCreate) create = nullptr;
    decltype(&cublasLtDestroy) destroy = nullptr;
    decltype(&cublasLtMatmulDescCreate) desc_create = nullptr;
    decltype(&cublasLtMatmulDescDestroy) desc_destroy = nullptr;
    decltype(&cublasLtMatmulDescSetAttribute) desc_set = nullptr;
    decltype(&cublasLtMatrixLayoutCreate) layout_create = nullptr;
    decltype(&cublasLtMatrixLayoutDestroy) layout_destroy = nullptr;
    decltype(&cublasLtMatrixLayoutSetAttribute) layout_set = nullptr;
    decltype(&cublasLtMatmulPreferenceCreate) preference_create = nullptr;
    decltype(&cublasLtMatmulPreferenceDestroy) preference_destroy = nullptr;
    decltype(&cublasLtMatmulPreferenceSetAttribute) preference_set = nullptr;
    decltype(&cublasLtMatmulAlgoGetHeuristic) heuristic = nullptr;
    decltype(&cublasLtMatmulAlgoCheck) algo_check = nullptr;
    decltype(&cublasLtMatmul) matmul = nullptr;
    decltype(&cublasLtGetStatusName) status_name = nullptr;
    decltype(&cublasLtGetStatusString) status_string = nullptr;

    CublasLtLibrary() {
        const CublasOpenResult opened = open_first_cublas(
            cublas_candidates(cublas_search_inputs_of_this_process(), "libcublasLt"),
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
            failure = "cannot load libcublasLt.so." COLLAPSE_CUDA_STRINGIFY(CUBLAS_VER_MAJOR) "; tried " +
                      std::to_string(opened.tried.size()) + " places: " +
                      (opened.tried.empty() ? std::string() : opened.tried.front());
            for (std::size_t t = 1; t < opened.tried.size(); ++t) failure += "; " + opened.tried[t];
            failure += " (set LD_LIBRARY_PATH or CUDA_HOME to the toolkit)";
            return;
        }
        resolve(create, "cublasLtCreate");
        resolve(destroy, "cublasLtDestroy");
        resolve(desc_create, "cublasLtMatmulDescCreate");
        resolve(desc_destroy, "cublasLtMatmulDescDestroy");
        resolve(desc_set, "cublasLtMatmulDescSetAttribute");
        resolve(layout_create, "cublasLtMatrixLayoutCreate");
        resolve(layout_destroy, "cublasLtMatrixLayoutDestroy");
        resolve(layout_set, "cublasLtMatrixLayoutSetAttribute");
        resolve(preference_create, "cublasLtMatmulPreferenceCreate");
        resolve(preference_destroy, "cublasLtMatmulPreferenceDestroy");
        resolve(preference_set, "cublasLtMatmulPreferenceSetAttribute");
        resolve(heuristic, "cublasLtMatmulAlgoGetHeuristic");
        resolve(algo_check, "cublasLtMatmulAlgoCheck");
        resolve(matmul, "cublasLtMatmul");
        resolve(status_name, "cublasLtGetStatusName");
        resolve(status_string, "cublasLtGetStatusString");
    }

    template <class Function>
    void resolve(Function& function, const char* symbol) {
        function = reinterpret_cast<Function>(dlsym(handle, symbol));
        if (function == nullptr && failure.empty()) failure = std::string("libcublasLt lacks ") + symbol;
    }
};

// The library, loaded once; throws BackendError when it cannot be used.
const CublasLtLibrary& cublaslt() {
    static const CublasLtLibrary library;
    if (!library.failure.empty()) throw BackendError("cuBLASLt unavailable: " + library.failure);
    return library;
}

// Owned descriptors (destroyed quietly: a destructor must not throw).
struct Descriptors {
    cublasLtMatmulDesc_t operation = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulPreference_t preference = nullptr;

    Descriptors() = default;
    Descriptors(const Descriptors&) = delete;
    Descriptors& operator=(const Descriptors&) = delete;
    ~Descriptors() {
        const CublasLtLibrary& lt = cublaslt();
        for (cublasLtMatrixLayout_t layout : {a, b, c})
            if (layout != nullptr) (void)lt.layout_destroy(layout);
        if (operation != nullptr) (void)lt.desc_destroy(operation);
        if (preference != nullptr) (void)lt.preference_destroy(preference);
    }
};

// The largest power of two up to 256 that divides the matrix's start and every batch stride, in bytes.
template <class Real>
std::uint32_t alignment_of(const Real* data, std::int64_t stride) {
    const auto address = reinterpret_cast<std::uintptr_t>(data) | static_cast<std::uintptr_t>(stride * sizeof(Real));
    std::uint32_t alignment = 256;
    while (alignment > sizeof(Real) && address % alignment != 0) alignment /= 2;
    return alignment;
}

// What the pinned algorithm of a product depends on: everything but the batch count and the data.
// (bytes per element, transpose A, transpose B, rows/columns/ld/stride of A, B, C, beta == 0, alignment of A, B, C)
using ShapeKey =
    std::tuple<int, bool, bool, std::vector<std::int64_t>, bool, std::uint32_t, std::uint32_t, std::uint32_t>;

std::vector<std::int64_t> layout_numbers(const lockstep::LtMatrixLayout& a, const lockstep::LtMatrixLayout& b,
                                         const lockstep::LtMatrixLayout& c) {
    std::vector<std::int64_t> numbers;
    for (const lockstep::LtMatrixLayout* layout : {&a, &b, &c})
        numbers.insert(numbers.end(), {layout->rows, layout->columns, layout->ld, layout->batch_stride});
    return numbers;
}

std::string describe(const ShapeKey& key, int count) {
    const std::vector<std::int64_t>& n = std::get<3>(key);
    return std::string(std::get<0>(key) == 4 ? "float32" : "float64") + " product C[" + std::to_string(n[8]) + "x" +
           std::to_string(n[9]) + "] = " + (std::get<1>(key) ? "A^T" : "A") + "[" + std::to_string(n[0]) + "x" +
           std::to_string(n[1]) + "] " + (std::get<2>(key) ? "B^T" : "B") + "[" + std::to_string(n[4]) + "x" +
           std::to_string(n[5]) + "] at batch count " + std::to_string(count);
}

} // namespace

std::string describe_cublas_status(cublasStatus_t status, const char* call, const char* site) {
    const CublasLtLibrary& library = cublaslt();
    return std::string(call) + " at " + site + ": " + library.status_name(status) + " (" +
           library.status_string(status) + ")";
}

void check_cublas(cublasStatus_t status, const char* call, const char* site) {
    if (status == CUBLAS_STATUS_SUCCESS) return;
    (void)cudaGetLastError(); // as check_cuda: do not let a later launch check report this failure again
    throw BackendError("cuBLAS error in " + describe_cublas_status(status, call, site));
}

struct CublasLtBatchedGemm::State {
    cudaStream_t stream = nullptr;
    cublasLtHandle_t handle = nullptr;
    void* workspace = nullptr;
    std::size_t workspace_bytes = 0;
    std::mutex mutex; // the caches below
    struct PinnedAlgorithm {
        cublasLtMatmulAlgo_t algorithm;
        cublasComputeType_t compute;
    };
    std::map<ShapeKey, PinnedAlgorithm> pinned;
    std::set<std::pair<ShapeKey, int>> checked; // (shape, batch count) the pinned algorithm was confirmed for

    // Descriptors of `g` at batch count `count` with compute type `compute`, in the run precision.
    template <class Real>
    void describe_product(Descriptors& d, const lockstep::LtMatmul<Real>& g, int count,
                          cublasComputeType_t compute) const {
        const CublasLtLibrary& lt = cublaslt();
        const cudaDataType type = sizeof(Real) == sizeof(float) ? CUDA_R_32F : CUDA_R_64F;
        COLLAPSE_CUBLASLT_CHECK("cublasLtMatmulDescCreate", lt.desc_create(&d.operation, compute, type));
        const cublasOperation_t ops[] = {g.transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                                         g.transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N};
        const cublasLtMatmulDescAttributes_t op_attributes[] = {CUBLASLT_MATMUL_DESC_TRANSA,
                                                                CUBLASLT_MATMUL_DESC_TRANSB};
        for (int i = 0; i < 2; ++i)
            COLLAPSE_CUBLASLT_CHECK("cublasLtMatmulDescSetAttribute",
                                    lt.desc_set(d.operation, op_attributes[i], &ops[i], sizeof(ops[i])));
        const std::pair<cublasLtMatrixLayout_t*, const lockstep::LtMatrixLayout*> layouts[] = {
            {&d.a, &g.a}, {&d.b, &g.b}, {&d.c, &g.c}};
        for (const auto& [made, layout] : layouts) {
            COLLAPSE_CUBLASLT_CHECK("cublasLtMatrixLayoutCreate",
                                    lt.layout_create(made, type, static_cast<std::uint64_t>(layout->rows),
                                                     static_cast<std::uint64_t>(layout->columns), layout->ld));
            const std::int32_t batch = count;
            const std::int64_t stride = layout->batch_stride;
            COLLAPSE_CUBLASLT_CHECK("cublasLtMatrixLayoutSetAttribute",
                                    lt.layout_set(*made, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof(batch)));
            COLLAPSE_CUBLASLT_CHECK(
                "cublasLtMatrixLayoutSetAttribute",
                lt.layout_set(*made, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
        }
    }

    // The algorithm of this shape: chosen at kPinnedReferenceBatchCount the first time, then kept.
    // The pedantic compute type first; should cuBLASLt offer nothing for it,
    // the plain one (CUBLAS_COMPUTE_32F / 64F: in cuBLASLt TF32 and emulation
    // are compute types of their own, never chosen for these).
    template <class Real>
    const PinnedAlgorithm& pin(const ShapeKey& key, const lockstep::LtMatmul<Real>& g) {
        if (const auto found = pinned.find(key); found != pinned.end()) return found->second;
        const bool single = sizeof(Real) == sizeof(float);
        const cublasComputeType_t computes[] = {single ? CUBLAS_COMPUTE_32F_PEDANTIC : CUBLAS_COMPUTE_64F_PEDANTIC,
                                                single ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_64F};
        std::string refusals;
        for (const cublasComputeType_t compute : computes) {
            cublasLtMatmulHeuristicResult_t result{};
            std::string refusal;
            try { // a descriptor refused for this compute type is a refusal too
                const cublasStatus_t status = heuristic(g, key, compute, result);
                if (status == CUBLAS_STATUS_SUCCESS)
                    return pinned.emplace(key, PinnedAlgorithm{result.algo, compute}).first->second;
                refusal = cublaslt().status_name(status);
            } catch (const BackendError& error) {
                refusal = error.what();
            }
            refusals += std::string(refusals.empty() ? "" : "; ") + "compute type " +
                        std::to_string(static_cast<int>(compute)) + ": " + refusal;
        }
        throw BackendError("cuBLASLt has no algorithm for the " + describe(key, kPinnedReferenceBatchCount) +
                           " (reduction scheme none, workspace up to " + std::to_string(workspace_bytes) +
                           " bytes; " + refusals + ")");
    }

    // cublasLtMatmulAlgoGetHeuristic's best algorithm for `g` at the reference count; its status.
    template <class Real>
    cublasStatus_t heuristic(const lockstep::LtMatmul<Real>& g, const ShapeKey& key, cublasComputeType_t compute,
                             cublasLtMatmulHeuristicResult_t& result) const {
        const CublasLtLibrary& lt = cublaslt();
        Descriptors d;
        describe_product(d, g, kPinnedReferenceBatchCount, compute);
        COLLAPSE_CUBLASLT_CHECK("cublasLtMatmulPreferenceCreate", lt.preference_create(&d.preference));
        const auto set = [&](cublasLtMatmulPreferenceAttributes_t attribute, const auto& value) {
            COLLAPSE_CUBLASLT_CHECK("cublasLtMatmulPreferenceSetAttribute",
                                    lt.preference_set(d.preference, attribute, &value, sizeof(value)));
        };
        set(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, static_cast<std::uint64_t>(workspace_bytes));
        set(CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, static_cast<std::uint32_t>(CUBLASLT_REDUCTION_SCHEME_NONE));
        set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, std::get<5>(key));
        set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, std::get<6>(key));
        set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, std::get<7>(key));
        set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, std::get<7>(key));
        int found = 0;
        const cublasStatus_t status =
            lt.heuristic(handle, d.operation, d.a, d.b, d.c, d.c, d.preference, 1, &result, &found);
        if (status != CUBLAS_STATUS_SUCCESS) return status;
        return found == 0 ? CUBLAS_STATUS_NOT_SUPPORTED : result.state;
    }

    template <class Real>
    void run(const lockstep::GemmBatch<Real>& batch) {
        // A batch with nothing to compute is not an error (cuBLAS would call some of them one).
        if (batch.count == 0 || batch.m == 0 || batch.n == 0) return;
        const lockstep::LtMatmul<Real> g = lockstep::to_lt_matmul(batch);
        const ShapeKey key{static_cast<int>(sizeof(Real)), g.transpose_a, g.transpose_b, layout_numbers(g.a, g.b, g.c),
                           g.beta == Real(0), alignment_of(g.a_data, g.a.batch_stride),
                           alignment_of(g.b_data, g.b.batch_stride), alignment_of(g.c_data, g.c.batch_stride)};
        const CublasLtLibrary& lt = cublaslt();
        const std::lock_guard<std::mutex> lock(mutex);
        const PinnedAlgorithm& pinned_algorithm = pin(key, g);
        const cublasLtMatmulAlgo_t& algorithm = pinned_algorithm.algorithm;
        Descriptors d;
        describe_product(d, g, g.c.batch_count, pinned_algorithm.compute);
        if (!checked.count({key, g.c.batch_count})) {
            cublasLtMatmulHeuristicResult_t result{};
            const cublasStatus_t status = lt.algo_check(handle, d.operation, d.a, d.b, d.c, d.c, &algorithm, &result);
            if (status != CUBLAS_STATUS_SUCCESS || result.workspaceSize > workspace_bytes)
                throw BackendError("cuBLASLt refuses the algorithm pinned at batch count " +
                                   std::to_string(kPinnedReferenceBatchCount) + " for the " +
                                   describe(key, g.c.batch_count) + ": " +
                                   (status != CUBLAS_STATUS_SUCCESS
                                        ? describe_cublas_status(status, "cublasLtMatmulAlgoCheck", __FILE__)
                                        : "it needs " + std::to_string(result.workspaceSize) +
                                              " bytes of workspace, more than the " +
                                              std::to_string(workspace_bytes) + " allocated"));
            checked.insert({key, g.c.batch_count});
        }
        COLLAPSE_CUBLASLT_CHECK("cublasLtMatmul",
                                lt.matmul(handle, d.operation, &g.alpha, g.a_data, d.a, g.b_data, d.b, &g.beta,
                                          g.c_data, d.c, g.c_data, d.c, &algorithm, workspace, workspace_bytes,
                                          stream));
    }
};

CublasLtBatchedGemm::CublasLtBatchedGemm(cudaStream_t stream, std::size_t workspace_bytes)
    : state_(std::make_unique<State>()) {
    const CublasLtLibrary& library = cublaslt();
    state_->stream = stream;
    state_->workspace_bytes = workspace_bytes;
    COLLAPSE_CUBLASLT_CHECK("cublasLtCreate", library.create(&state_->handle));
    try {
        if (workspace_bytes > 0) COLLAPSE_CUDA_CHECK(cudaMalloc(&state_->workspace, workspace_bytes));
    } catch (...) {
        (void)library.destroy(state_->handle);
        throw;
    }
}

CublasLtBatchedGemm::~CublasLtBatchedGemm() {
    if (state_->workspace != nullptr) (void)cudaFree(state_->workspace);
    if (state_->handle != nullptr) (void)cublaslt().destroy(state_->handle);
}

void CublasLtBatchedGemm::operator()(const lockstep::GemmBatch<float>& batch) const { state_->run(batch); }
void CublasLtBatchedGemm::operator()(const lockstep::GemmBatch<double>& batch) const { state_->run(batch); }

std::size_t CublasLtBatchedGemm::pinned_shapes() const {
    const std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->pinned.size();
}

} // namespace collapse::cuda
