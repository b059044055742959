// Page-locked host memory for the batch's transfers: cudaMemcpyAsync from
// pinned memory is a real DMA that overlaps host work, from pageable memory
// it is staged and synchronous. Grow-only, so consecutive batches reuse it.
// Pageable mode exists for host-only tests of the packing code on machines
// without a driver; the backend always asks for pinned memory.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdlib>
#include <new>
#include <type_traits>

#include "cuda_check.hpp"

namespace collapse::cuda {

enum class HostMemory { pinned, pageable };

template <class T>
class PinnedBuffer {
    static_assert(std::is_trivially_copyable_v<T>, "pinned buffers hold plain data copied byte-wise to the device");

public:
    explicit PinnedBuffer(HostMemory memory = HostMemory::pinned) : memory_(memory) {}
    PinnedBuffer(const PinnedBuffer&) = delete;
    PinnedBuffer& operator=(const PinnedBuffer&) = delete;
    ~PinnedBuffer() { release(); }

    // Makes room for `count` elements; contents are unspecified afterwards.
    void resize(std::size_t count) {
        if (count > capacity_) {
            release();
            void* memory = nullptr;
            if (memory_ == HostMemory::pinned) {
                COLLAPSE_CUDA_CHECK(cudaMallocHost(&memory, count * sizeof(T)));
            } else if ((memory = std::malloc(count * sizeof(T))) == nullptr) {
                throw std::bad_alloc();
            }
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
    void release() noexcept {
        if (data_ == nullptr) return;
        // cudaFreeHost can only report an earlier sticky error here; nothing to recover.
        if (memory_ == HostMemory::pinned) (void)cudaFreeHost(data_);
        else std::free(data_);
        data_ = nullptr;
        capacity_ = size_ = 0;
    }

    HostMemory memory_;
    T* data_ = nullptr;
    std::size_t size_ = 0, capacity_ = 0;
};

} // namespace collapse::cuda
