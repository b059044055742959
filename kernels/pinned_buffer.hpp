// Page-locked host memory for the batch's transfers: cudaMemcpyAsync from
// pinned memory is a real DMA that overlaps host work, from pageable memory
// it is staged and synchronous. Grow-only, so consecutive batches reuse it.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <type_traits>

#include "cuda_check.hpp"

namespace collapse::cuda {

template <class T>
class PinnedBuffer {
    static_assert(std::is_trivially_copyable_v<T>, "pinned buffers hold plain data copied byte-wise to the device");

public:
    PinnedBuffer() = default;
    PinnedBuffer(const PinnedBuffer&) = delete;
    PinnedBuffer& operator=(const PinnedBuffer&) = delete;
    ~PinnedBuffer() {
        if (data_ != nullptr) (void)cudaFreeHost(data_); // destructors must not throw; nothing to recover
    }

    // Makes room for `count` elements; contents are unspecified afterwards.
    void resize(std::size_t count) {
        if (count > capacity_) {
            if (data_ != nullptr) COLLAPSE_CUDA_CHECK(cudaFreeHost(data_));
            data_ = nullptr;
            capacity_ = 0;
            void* memory = nullptr;
            COLLAPSE_CUDA_CHECK(cudaMallocHost(&memory, count * sizeof(T)));
            data_ = static_cast<T*>(memory);
            capacity_ = count;
        }
        size_ = count;
    }

    T* data() { return data_; }
    const T* data() const { return data_; }
    std::size_t size() const { return size_; }
    std::size_t bytes() const { return size_ * sizeof(T); }
    T& operator[](std::size_t e) { return data_[e]; }
    const T& operator[](std::size_t e) const { return data_[e]; }

private:
    T* data_ = nullptr;
    std::size_t size_ = 0, capacity_ = 0;
};

} // namespace collapse::cuda
