// Every CUDA runtime call of the backend goes through check_cuda, so a failure
// becomes a collapse::BackendError naming the call, the source line and
// CUDA's own error name and text, never a silently wrong result.
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "collapse/backend/backend.hpp"

namespace collapse::cuda {

// "cudaMemcpyAsync(...) at kernels/device_batch.cu:42: cudaErrorInvalidValue (invalid argument)"
inline std::string describe_cuda_error(cudaError_t error, const char* call, const char* site) {
    return std::string(call) + " at " + site + ": " + cudaGetErrorName(error) + " (" + cudaGetErrorString(error) + ")";
}

inline void check_cuda(cudaError_t error, const char* call, const char* site) {
    if (error == cudaSuccess) return;
    // Reset the runtime's last-error slot so a later launch check does not
    // report this failure again under another call's name (sticky errors,
    // which poison the context, stay and fail every later call anyway).
    (void)cudaGetLastError();
    throw BackendError("CUDA error in " + describe_cuda_error(error, call, site));
}

} // namespace collapse::cuda

#define COLLAPSE_CUDA_STRINGIFY_DETAIL(x) #x
#define COLLAPSE_CUDA_STRINGIFY(x) COLLAPSE_CUDA_STRINGIFY_DETAIL(x)
// The call text and file:line travel into the error message.
#define COLLAPSE_CUDA_CHECK(call) \
    ::collapse::cuda::check_cuda((call), #call, __FILE__ ":" COLLAPSE_CUDA_STRINGIFY(__LINE__))
