// query_device_limits: the device's own attributes, one cudaDeviceGetAttribute each.
#include "device_limits.hpp"

#include "cuda_check.hpp"

namespace collapse::cuda {

namespace {
int attribute(cudaDeviceAttr which, int device, const char* name) {
    int value = 0;
    check_cuda(cudaDeviceGetAttribute(&value, which, device), name, __FILE__);
    return value;
}
} // namespace

DeviceLimits query_device_limits(int device) {
#define COLLAPSE_ATTRIBUTE(which) attribute(which, device, "cudaDeviceGetAttribute(" #which ")")
    DeviceLimits limits;
    limits.compute_major = COLLAPSE_ATTRIBUTE(cudaDevAttrComputeCapabilityMajor);
    limits.compute_minor = COLLAPSE_ATTRIBUTE(cudaDevAttrComputeCapabilityMinor);
    limits.multiprocessors = COLLAPSE_ATTRIBUTE(cudaDevAttrMultiProcessorCount);
    limits.shared_bytes_per_block_optin =
        static_cast<std::size_t>(COLLAPSE_ATTRIBUTE(cudaDevAttrMaxSharedMemoryPerBlockOptin));
    limits.shared_bytes_per_multiprocessor =
        static_cast<std::size_t>(COLLAPSE_ATTRIBUTE(cudaDevAttrMaxSharedMemoryPerMultiprocessor));
    limits.registers_per_block = COLLAPSE_ATTRIBUTE(cudaDevAttrMaxRegistersPerBlock);
    limits.registers_per_multiprocessor = COLLAPSE_ATTRIBUTE(cudaDevAttrMaxRegistersPerMultiprocessor);
    limits.max_threads_per_block = COLLAPSE_ATTRIBUTE(cudaDevAttrMaxThreadsPerBlock);
    limits.max_threads_per_multiprocessor = COLLAPSE_ATTRIBUTE(cudaDevAttrMaxThreadsPerMultiProcessor);
    limits.warp_size = COLLAPSE_ATTRIBUTE(cudaDevAttrWarpSize);
#undef COLLAPSE_ATTRIBUTE
    return limits;
}

} // namespace collapse::cuda
