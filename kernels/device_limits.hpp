// What a launch plan may assume about the GPU it runs on, read from the
// device at run time (query_device_limits, device_limits.cpp) and never from
// H100 constants. Plain C++ (no CUDA header), so host tests plan launches for
// other parts through the presets below: the A100's 163 KiB, the A40/L40S's
// 99 KiB and the H100's 227 KiB of opt-in shared memory per block.
#pragma once

#include <cstddef>

namespace collapse::cuda {

struct DeviceLimits {
    int compute_major = 0, compute_minor = 0;
    int multiprocessors = 1;
    // cudaDevAttrMaxSharedMemoryPerBlockOptin: what one block may use after
    // cudaFuncSetAttribute(MaxDynamicSharedMemorySize) raises its limit.
    std::size_t shared_bytes_per_block_optin = 48 * 1024;
    std::size_t shared_bytes_per_multiprocessor = 48 * 1024;
    int registers_per_block = 65536;
    int registers_per_multiprocessor = 65536;
    int max_threads_per_block = 1024;
    int max_threads_per_multiprocessor = 1024;
    int warp_size = 32;

    // Presets with the datasheet attributes of common parts, for host tests
    // and documentation; a running backend uses query_device_limits.
    static constexpr DeviceLimits sm80_a100() { return preset(8, 0, 108, 163, 164, 2048); }
    static constexpr DeviceLimits sm86_a40() { return preset(8, 6, 84, 99, 100, 1536); }
    static constexpr DeviceLimits sm89_l40s() { return preset(8, 9, 142, 99, 100, 1536); }
    static constexpr DeviceLimits sm90_h100() { return preset(9, 0, 132, 227, 228, 2048); }

private:
    static constexpr DeviceLimits preset(int major, int minor, int sms, std::size_t block_kib, std::size_t sm_kib,
                                         int threads_per_sm) {
        DeviceLimits limits;
        limits.compute_major = major;
        limits.compute_minor = minor;
        limits.multiprocessors = sms;
        limits.shared_bytes_per_block_optin = block_kib * 1024;
        limits.shared_bytes_per_multiprocessor = sm_kib * 1024;
        limits.max_threads_per_multiprocessor = threads_per_sm;
        return limits;
    }
};

// The limits of CUDA device `device` (cudaDeviceGetAttribute); throws
// BackendError naming the failing call. Defined in device_limits.cpp.
DeviceLimits query_device_limits(int device);

} // namespace collapse::cuda
