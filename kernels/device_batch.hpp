// The device half of a CUDA batch: device buffers (Thrust), transfers on one
// stream, the kernel launch, and the checks that every trajectory finished.
// Defined in device_batch.cu so that only nvcc sees Thrust.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>

#include "batch_packing.hpp"
#include "collapse/results.hpp"
#include "cuda_stream.hpp"
#include "collapse/model/fused_block_tensor.hpp"
#include "device_limits.hpp"

namespace collapse::cuda {

// Trajectories per status, counted on the device after the kernel.
struct StatusCounts {
    std::int64_t by_status[4] = {}; // index = status + 1: not_run, stable, collapsed, diverged
    std::int64_t of(TrajectoryStatus status) const { return by_status[static_cast<int>(status) + 1]; }
};

// Which kernel integrates a batch. `automatic`: the warp-per-trajectory
// kernel for small states (prefer_warp_kernel), else the block-per-trajectory
// (team) kernel, each where its shared-memory buffers fit, else one thread
// per trajectory. `block`: the fused block kernel (block_kernel.hpp) where it
// supports the batch (gd, embedding kind, d in {8, 16, 32, 64}) and its plan
// fits, else what `automatic` picks; `automatic` does not take it until it is
// measured. COLLAPSE_CUDA_KERNEL=auto|thread|team|warp|block sets it
// (benchmarks), in the order of the enumerators.
enum class KernelChoice { automatic, thread, team, warp, block };
KernelChoice kernel_choice_from_environment();

class DeviceBatchRunner {
public:
    // `math`: the fused block kernel's products (COLLAPSE_CUDA_TENSOR_CORES, fused_math_from_environment).
    DeviceBatchRunner(const DeviceLimits& limits, KernelChoice choice, FusedMath math = FusedMath::fma);
    ~DeviceBatchRunner();
    DeviceBatchRunner(const DeviceBatchRunner&) = delete;
    DeviceBatchRunner& operator=(const DeviceBatchRunner&) = delete;

    // Uploads `host`, integrates every trajectory, checks that each one got a
    // status, and copies traces and summaries into `out` (already prepared by
    // pack_batch) and the final states back into host.states. Throws
    // BackendError on any CUDA failure.
    template <class Real>
    StatusCounts run(HostBatch<Real>& host, IntegratorMethod method, BatchOutput& out);

    // Frees every device buffer (the next run allocates afresh), so that the
    // lockstep path's pools and these never hold device memory at once.
    void release_device_memory();

    // "block-tc" (tensor cores), "block", "warp", "team" or "thread": the kernel of the last batch.
    const char* last_kernel() const { return last_kernel_; }

private:
    OwnedStream stream_; // destroyed after buffers_
    struct Buffers;      // Thrust device vectors, reused (grow-only) across batches
    std::unique_ptr<Buffers> buffers_;
    DeviceLimits limits_;
    KernelChoice choice_ = KernelChoice::automatic;
    FusedMath math_ = FusedMath::fma;
    const char* last_kernel_ = "none";
};

extern template StatusCounts DeviceBatchRunner::run<float>(HostBatch<float>&, IntegratorMethod, BatchOutput&);
extern template StatusCounts DeviceBatchRunner::run<double>(HostBatch<double>&, IntegratorMethod, BatchOutput&);

} // namespace collapse::cuda
