// A CUDA Graph per lockstep step (docs/cuda-backend.md, "Large states:
// lockstep cuBLAS path"): the step launcher run_lockstep hands each step
// to (lockstep_algorithm.hpp). A batch's first step runs directly, so that
// lazy module loading, cuBLASLt's heuristic and its algorithm checks happen
// outside any capture. On the second it captures the step body
// (evaluation, watch, masked update, loop-step advance: 8 or 14 launches)
// on the runner's stream into a graph and instantiates it; that step and
// every later one is then one cudaGraphLaunch. The step body takes
// nothing step-dependent from the host (the loop step lives in device
// memory), so the replay is the step. With the graph off
// (COLLAPSE_CUDA_LOCKSTEP_GRAPH=off) it runs the body directly, as on the
// host.
//
// Capture is thread-local: a call in the body that is not allowed under
// capture (cudaMalloc, a synchronisation) fails the capture, and the error
// names it, instead of silently leaving the step ungraphed. The products'
// workspace is allocated before the loop (CublasLtBatchedGemm), so no
// product allocates under capture.
#pragma once

#include <cuda_runtime_api.h>

#include "collapse/lockstep/lockstep_layout.hpp"
#include "cuda_check.hpp"

namespace collapse::cuda {

// COLLAPSE_CUDA_LOCKSTEP_GRAPH: on (the default) or off, in that order.
enum class LockstepGraphChoice { on, off };

class CudaGraphStepLauncher {
public:
    CudaGraphStepLauncher(cudaStream_t stream, bool use_graph) : stream_(stream), use_graph_(use_graph) {}
    ~CudaGraphStepLauncher() {
        if (exec_ != nullptr) (void)cudaGraphExecDestroy(exec_);
    }
    CudaGraphStepLauncher(const CudaGraphStepLauncher&) = delete;
    CudaGraphStepLauncher& operator=(const CudaGraphStepLauncher&) = delete;

    // One launcher serves one batch (one view): the first call runs the body, the second captures.
    template <class Real, class StepBody>
    void operator()(const lockstep::LockstepView<Real>&, const StepBody& step_body) {
        if (!use_graph_ || !warmed_up_) {
            warmed_up_ = true;
            step_body();
            return;
        }
        if (exec_ == nullptr) capture(step_body);
        COLLAPSE_CUDA_CHECK(cudaGraphLaunch(exec_, stream_));
    }

    int captures() const { return captures_; }

private:
    template <class StepBody>
    void capture(const StepBody& step_body) {
        COLLAPSE_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
        cudaGraph_t graph = nullptr;
        try {
            step_body();
        } catch (...) {
            // End the capture so that the stream is usable again; the body's error is the one to report.
            (void)cudaStreamEndCapture(stream_, &graph);
            if (graph != nullptr) (void)cudaGraphDestroy(graph);
            (void)cudaGetLastError();
            throw;
        }
        COLLAPSE_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
        const cudaError_t instantiated = cudaGraphInstantiate(&exec_, graph, 0);
        (void)cudaGraphDestroy(graph);
        check_cuda(instantiated, "cudaGraphInstantiate(&exec_, graph, 0)",
                   __FILE__ ":" COLLAPSE_CUDA_STRINGIFY(__LINE__));
        ++captures_;
    }

    cudaStream_t stream_;
    bool use_graph_;
    bool warmed_up_ = false;
    cudaGraphExec_t exec_ = nullptr;
    int captures_ = 0;
};

} // namespace collapse::cuda
