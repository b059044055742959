// A CUDA stream owned by the object that holds it. A member declared before
// the device buffers that use it is destroyed after them.
#pragma once

#include <cuda_runtime_api.h>

#include "cuda_check.hpp"

namespace collapse::cuda {

// A blocking stream: it also orders against work on the legacy default stream.
class OwnedStream {
public:
    OwnedStream() { COLLAPSE_CUDA_CHECK(cudaStreamCreate(&stream_)); }
    ~OwnedStream() {
        if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
    }
    OwnedStream(const OwnedStream&) = delete;
    OwnedStream& operator=(const OwnedStream&) = delete;

    operator cudaStream_t() const { return stream_; }

private:
    cudaStream_t stream_ = nullptr;
};

// One Pools<float> and one Pools<double>, picked by a run's Real.
template <template <class> class Pools>
struct PerPrecision {
    Pools<float> single;
    Pools<double> double_precision;

    template <class Real>
    Pools<Real>& get() {
        if constexpr (sizeof(Real) == sizeof(float)) return single;
        else return double_precision;
    }
};

} // namespace collapse::cuda
