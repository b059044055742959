// The lockstep path on the device (docs/cuda-backend.md, "Large states:
// lockstep cuBLAS path"): a drop-in alternative to DeviceBatchRunner::run
// for batches whose per-trajectory state outgrows a block's shared memory.
// The step loop is lockstep::run_lockstep (lockstep_algorithm.hpp) with
// thrust::cuda::par_nosync.on(stream), cuBLASLt strided-batched products
// with pinned algorithms (cublaslt_gemm.hpp) and a CUDA Graph per step
// (step_graph.hpp).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "batch_packing.hpp"
#include "collapse/results.hpp"
#include "cuda_stream.hpp"
#include "device_batch.hpp"
#include "device_limits.hpp"

namespace collapse::cuda {

// COLLAPSE_CUDA_LOCKSTEP: auto (the size rule, lockstep::prefer_lockstep),
// on (whenever the batch is supported: gd, embedding kind) or off, in the
// order of the enumerators.
enum class LockstepChoice { automatic, on, off };
LockstepChoice lockstep_choice_from_environment();

// COLLAPSE_CUDA_LOCKSTEP_GRAPH: on (the default: each batch's step is
// captured once as a CUDA Graph and replayed) or off (launched pass by pass).
bool lockstep_graph_from_environment();

// Whether this batch runs on the lockstep path: supported (gd, embedding
// kind) and, for `automatic`, one trajectory's state at the batch's widest
// head larger than the opt-in shared memory of a block on this device.
template <class Real>
bool use_lockstep(const HostBatch<Real>& host, IntegratorMethod method, const DeviceLimits& limits,
                  LockstepChoice choice);

class LockstepRunner {
public:
    LockstepRunner(); // on the current device; throws BackendError
    ~LockstepRunner();
    LockstepRunner(const LockstepRunner&) = delete;
    LockstepRunner& operator=(const LockstepRunner&) = delete;

    // As DeviceBatchRunner::run: uploads `host` (or makes its initial states
    // on the device), integrates every trajectory, checks each got a status,
    // copies traces and summaries into `out` and final states into
    // host.states. Throws BackendError on CUDA/cuBLAS failures and
    // std::invalid_argument for a batch the path does not run.
    template <class Real>
    StatusCounts run(HostBatch<Real>& host, IntegratorMethod method, BatchOutput& out);

    // lockstep::LockstepOptions for later batches: the lanes the batch runs
    // on (0, the default: one per trajectory; fewer lanes are refilled from
    // the queue) and the polling interval. Neither changes a result.
    void set_lanes(std::int64_t lanes) { lanes_ = lanes; }
    void set_poll_interval(int poll_interval) { poll_interval_ = poll_interval; }
    // Whether later batches replay a captured CUDA Graph per step (default:
    // COLLAPSE_CUDA_LOCKSTEP_GRAPH at construction). Changes no result.
    void set_graph(bool use_graph) { use_graph_ = use_graph; }
    // Steps captured as graphs so far (one per batch with the graph on).
    int graph_captures() const { return graph_captures_; }

    // Frees every device array (the next run allocates afresh), so that the
    // kernels' pools and these never hold device memory at once.
    void release_device_memory();

private:
    OwnedStream stream_; // destroyed after buffers_
    struct Buffers;      // device arrays, grow-only across batches
    std::unique_ptr<Buffers> buffers_;
    std::int64_t lanes_ = 0;
    int poll_interval_ = 16;
    bool use_graph_ = true;
    int graph_captures_ = 0;
};

extern template bool use_lockstep<float>(const HostBatch<float>&, IntegratorMethod, const DeviceLimits&, LockstepChoice);
extern template bool use_lockstep<double>(const HostBatch<double>&, IntegratorMethod, const DeviceLimits&,
                                          LockstepChoice);
extern template StatusCounts LockstepRunner::run<float>(HostBatch<float>&, IntegratorMethod, BatchOutput&);
extern template StatusCounts LockstepRunner::run<double>(HostBatch<double>&, IntegratorMethod, BatchOutput&);

} // namespace collapse::cuda
