// Linked instead of kernels/ when the build has no CUDA compiler.
#include "collapse/backend/backend.hpp"

namespace collapse {

std::unique_ptr<Backend> make_cuda_backend() {
    throw BackendError("this build of collapse-sweep has no CUDA backend (configured without nvcc)");
}

std::unique_ptr<Backend> make_cuda_backend_on(int) { return make_cuda_backend(); }

} // namespace collapse
