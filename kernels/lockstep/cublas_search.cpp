#include "lockstep/cublas_search.hpp"

#include <cublas_api.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>

namespace collapse::cuda {

std::vector<std::string> cublas_directories(const CublasSearchInputs& inputs) {
    std::vector<std::string> directories;
    const auto add = [&](const std::string& directory) {
        if (directory.empty()) return;
        std::string trimmed = directory;
        while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
        if (std::find(directories.begin(), directories.end(), trimmed) == directories.end())
            directories.push_back(trimmed);
    };
    add(inputs.runtime_directory);
    for (const std::string& root : {inputs.cuda_home, inputs.cuda_path})
        if (!root.empty()) {
            add(root + "/lib64");
            add(root + "/lib");
        }
    add(inputs.build_toolkit_directory);
    add("/usr/local/cuda/lib64");
    return directories;
}

std::vector<std::string> cublas_candidates(const CublasSearchInputs& inputs, const std::string& library) {
    const std::vector<std::string> names = {library + ".so." + std::to_string(inputs.major_version), library + ".so"};
    std::vector<std::string> candidates = names;
    for (const std::string& directory : cublas_directories(inputs))
        for (const std::string& name : names) candidates.push_back(directory + "/" + name);
    return candidates;
}

CublasSearchInputs cublas_search_inputs_of_this_process() {
    CublasSearchInputs inputs;
    inputs.major_version = CUBLAS_VER_MAJOR;
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&cudaGetDeviceCount), &info) != 0 && info.dli_fname != nullptr) {
        const std::string file = info.dli_fname;
        const std::size_t slash = file.rfind('/');
        if (slash != std::string::npos && file.find("libcudart", slash) != std::string::npos)
            inputs.runtime_directory = file.substr(0, slash);
    }
    if (const char* home = std::getenv("CUDA_HOME")) inputs.cuda_home = home;
    if (const char* path = std::getenv("CUDA_PATH")) inputs.cuda_path = path;
#ifdef COLLAPSE_CUDA_TOOLKIT_LIBRARY_DIR
    inputs.build_toolkit_directory = COLLAPSE_CUDA_TOOLKIT_LIBRARY_DIR;
#endif
    return inputs;
}

CublasOpenResult open_first_cublas(const std::vector<std::string>& candidates,
                                   const std::function<void*(const std::string&, std::string& reason)>& open) {
    CublasOpenResult result;
    for (const std::string& candidate : candidates) {
        std::string reason;
        if (void* handle = open(candidate, reason)) {
            result.handle = handle;
            result.opened = candidate;
            return result;
        }
        result.tried.push_back(candidate + ": " + (reason.empty() ? "not loaded" : reason));
    }
    return result;
}

} // namespace collapse::cuda
