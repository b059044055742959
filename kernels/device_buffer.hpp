// Device memory owned with plain cudaMalloc/cudaFree. Not thrust::device_vector:
// its destructor frees inside a noexcept function and throws when cudaFree
// reports an earlier sticky error (an illegal address in the kernel, say),
// which would turn a reportable BackendError into std::terminate. Thrust's
// algorithms still run on these buffers through device pointers.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <type_traits>

#include "cuda_check.hpp"

namespace collapse::cuda {

template <class T>
class DeviceBuffer {
    static_assert(std::is_trivially_copyable_v<T>, "device buffers hold plain data copied byte-wise");

public:
    DeviceBuffer() = default;
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    ~DeviceBuffer() {
        if (data_ != nullptr) (void)cudaFree(data_); // may report a sticky error; nothing to do about it here
    }

    // Grow-only: consecutive batches of one sweep reuse the allocation.
    // Contents are unspecified afterwards.
    void resize(std::size_t count) {
        if (count > capacity_) {
            release();
            void* memory = nullptr;
            COLLAPSE_CUDA_CHECK(cudaMalloc(&memory, count * sizeof(T)));
            data_ = static_cast<T*>(memory);
            capacity_ = count;
        }
        size_ = count;
    }

    void release() {
        if (data_ != nullptr) COLLAPSE_CUDA_CHECK(cudaFree(data_));
        data_ = nullptr;
        capacity_ = size_ = 0;
    }

    T* data() { return data_; }
    const T* data() const { return data_; }
    T* end() { return data_ + size_; }
    std::size_t size() const { return size_; }
    std::size_t bytes() const { return size_ * sizeof(T); }
    std::size_t capacity_bytes() const { return capacity_ * sizeof(T); }

private:
    T* data_ = nullptr;
    std::size_t size_ = 0, capacity_ = 0;
};

} // namespace collapse::cuda
