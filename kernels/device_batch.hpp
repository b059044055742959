// The device half of a CUDA batch: device buffers (Thrust), transfers on one
// stream, the kernel launch, and the checks that every trajectory finished.
// Defined in device_batch.cu so that only nvcc sees Thrust.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>

#include "batch_packing.hpp"
#include "collapse/results.hpp"

namespace collapse::cuda {

// Trajectories per status, counted on the device after the kernel.
struct StatusCounts {
    std::int64_t by_status[4] = {}; // index = status + 1: not_run, stable, collapsed, diverged
    std::int64_t of(TrajectoryStatus status) const { return by_status[static_cast<int>(status) + 1]; }
};

class DeviceBatchRunner {
public:
    explicit DeviceBatchRunner(int multiprocessors);
    ~DeviceBatchRunner();
    DeviceBatchRunner(const DeviceBatchRunner&) = delete;
    DeviceBatchRunner& operator=(const DeviceBatchRunner&) = delete;

    // Uploads `host`, integrates every trajectory, checks that each one got a
    // status, and copies traces and summaries into `out` (already prepared by
    // pack_batch) and the final states back into host.states. Throws
    // BackendError on any CUDA failure.
    template <class Real>
    StatusCounts run(HostBatch<Real>& host, IntegratorMethod method, BatchOutput& out);

private:
    struct Buffers; // Thrust device vectors, reused (grow-only) across batches
    std::unique_ptr<Buffers> buffers_;
    cudaStream_t stream_ = nullptr;
    int multiprocessors_ = 1;
};

extern template StatusCounts DeviceBatchRunner::run<float>(HostBatch<float>&, IntegratorMethod, BatchOutput&);
extern template StatusCounts DeviceBatchRunner::run<double>(HostBatch<double>&, IntegratorMethod, BatchOutput&);

} // namespace collapse::cuda
