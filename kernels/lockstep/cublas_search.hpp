// Where the lockstep path looks for libcublasLt (cublaslt_gemm.cpp opens it
// with dlopen on first use). Plain C++ with an injectable opener, so tests walk
// the search list without a GPU or a cuBLAS.
//
// Order: the bare sonames first (LD_LIBRARY_PATH, the executable's run path,
// ld.so.cache: what the user set wins), then the same names in the
// toolkit's library directories, for clusters whose CUDA module sets PATH
// but not LD_LIBRARY_PATH: the directory of a shared CUDA runtime loaded in
// this process (dladdr), $CUDA_HOME, $CUDA_PATH, the toolkit this binary
// was built against, /usr/local/cuda.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace collapse::cuda {

struct CublasSearchInputs {
    int major_version = 0;          // CUBLAS_VER_MAJOR of the headers built against
    std::string runtime_directory;  // directory of a shared libcudart in this process, or empty
    std::string cuda_home, cuda_path; // the environment variables, or empty
    std::string build_toolkit_directory; // CUDAToolkit_LIBRARY_DIR at build time, or empty
};

// Directories to try after the loader's own search, in order, without duplicates.
std::vector<std::string> cublas_directories(const CublasSearchInputs& inputs);

// Every name to hand to dlopen, in order: <library>.so.<major>, <library>.so,
// then both in each of cublas_directories. `library` is libcublasLt (the
// lockstep path's products), which shares cuBLAS's version and directories.
std::vector<std::string> cublas_candidates(const CublasSearchInputs& inputs, const std::string& library);

// This process's inputs: CUBLAS_VER_MAJOR, dladdr of the CUDA runtime (only
// when it is a shared libcudart: the static one lives in the executable),
// the environment, the build's toolkit directory.
CublasSearchInputs cublas_search_inputs_of_this_process();

struct CublasOpenResult {
    void* handle = nullptr;
    std::string opened;               // the candidate that loaded
    std::vector<std::string> tried;   // "candidate: reason" of each one that did not
};

// Tries `candidates` with `open` (returns a handle, or nullptr and sets the
// reason) until one loads.
CublasOpenResult open_first_cublas(const std::vector<std::string>& candidates,
                                   const std::function<void*(const std::string&, std::string& reason)>& open);

} // namespace collapse::cuda
