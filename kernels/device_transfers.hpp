// Pieces both device runners (device_batch.cu, lockstep/lockstep_runner.cu)
// use: checked asynchronous copies on a stream, and the status count that
// proves every trajectory of a batch got a status. Include from .cu files
// only: the functors are __host__ __device__.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

#include "collapse/results.hpp"
#include "cuda_check.hpp"
#include "device_batch.hpp"
#include "device_buffer.hpp"

namespace collapse::cuda {

template <class T>
void upload(DeviceBuffer<T>& device, const T* host, std::size_t count, cudaStream_t stream) {
    device.resize(count);
    if (count > 0)
        COLLAPSE_CUDA_CHECK(cudaMemcpyAsync(device.data(), host, count * sizeof(T), cudaMemcpyHostToDevice, stream));
}

template <class T>
void download(T* host, const T* device, std::size_t count, cudaStream_t stream) {
    if (count > 0) COLLAPSE_CUDA_CHECK(cudaMemcpyAsync(host, device, count * sizeof(T), cudaMemcpyDeviceToHost, stream));
}

template <class T>
void download(T* host, const DeviceBuffer<T>& device, cudaStream_t stream) {
    download(host, device.data(), device.size(), stream);
}

// One trajectory's status as a one-hot count, summed by transform_reduce.
struct CountStatus {
    __host__ __device__ StatusCounts operator()(const TrajectorySummary& summary) const {
        StatusCounts counts;
        const int index = static_cast<int>(summary.status) + 1;
        if (index >= 0 && index < 4) counts.by_status[index] = 1;
        return counts;
    }
};

struct AddCounts {
    __host__ __device__ StatusCounts operator()(const StatusCounts& a, const StatusCounts& b) const {
        StatusCounts sum;
        for (int s = 0; s < 4; ++s) sum.by_status[s] = a.by_status[s] + b.by_status[s];
        return sum;
    }
};

} // namespace collapse::cuda
