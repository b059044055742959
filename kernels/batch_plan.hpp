// The default batch size of the CUDA backend from the device's own limits
// (DeviceLimits) and its free memory: plain C++, so tests size batches for
// an A100, an A40 or an H100 without one.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "device_limits.hpp"

namespace collapse::cuda {

struct BatchMemory {
    std::size_t free_device_bytes = 0;
    std::size_t stack_bytes_per_thread = 0; // the stack limit the backend set (local memory of every resident thread)
    std::size_t device_bytes_per_trajectory = 1;
    std::size_t host_bytes = 0; // pinned host memory the batch may take
    std::size_t host_bytes_per_trajectory = 1;
};

// Four waves of 128-thread blocks per multiprocessor keep the device busy
// while trajectories that stop early leave holes.
constexpr std::int64_t batch_waves_per_multiprocessor = 4, batch_threads_per_wave = 128;

// Trajectories per batch: four waves per multiprocessor, bounded by half the
// free device memory (after the stack every resident thread reserves; the
// other half is for other processes and Thrust's temporaries) and by
// `host_bytes`; at least 1.
inline std::int64_t plan_batch_size(const DeviceLimits& limits, const BatchMemory& memory) {
    const std::int64_t wanted = batch_waves_per_multiprocessor * limits.multiprocessors * batch_threads_per_wave;
    const std::size_t stack_reserve = memory.stack_bytes_per_thread * static_cast<std::size_t>(limits.multiprocessors) *
                                      static_cast<std::size_t>(limits.max_threads_per_multiprocessor);
    const std::size_t half = memory.free_device_bytes / 2;
    const std::size_t device_budget = half > stack_reserve ? half - stack_reserve : 0;
    const auto by_device = static_cast<std::int64_t>(device_budget / std::max<std::size_t>(1, memory.device_bytes_per_trajectory));
    const auto by_host = static_cast<std::int64_t>(memory.host_bytes / std::max<std::size_t>(1, memory.host_bytes_per_trajectory));
    return std::max<std::int64_t>(1, std::min({wanted, by_device, by_host}));
}

} // namespace collapse::cuda
