#include "collapse/backend/backend.hpp"

namespace collapse {

std::unique_ptr<Backend> make_backend(const std::string& choice, int threads, std::string& note) {
    if (choice == "cpu") return make_cpu_backend(threads);
    if (choice == "cuda") return make_cuda_backend();
    if (choice != "auto") throw BackendError("unknown backend '" + choice + "' (expected auto, cpu or cuda)");
    try {
        return make_cuda_backend();
    } catch (const BackendError& why) {
        note = std::string("CUDA backend unavailable (") + why.what() + "); using the CPU backend";
        return make_cpu_backend(threads);
    }
}

} // namespace collapse
