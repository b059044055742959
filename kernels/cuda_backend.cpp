// The CUDA backend: host-side setup and packing (batch_packing), one kernel
// launch per batch that integrates every trajectory to its end
// (trajectory_kernel.cu), results back into the same BatchOutput layout as
// the CPU backend. Synchronous per batch, like the Backend interface.
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>

#include "batch_packing.hpp"
#include "batch_plan.hpp"
#include "collapse/backend/backend.hpp"
#include "cuda_check.hpp"
#include "device_batch.hpp"
#include "device_limits.hpp"
#include "device_memory_tenancy.hpp"
#include "environment_choice.hpp"
#include "lockstep/lockstep_runner.hpp"
#include "block_kernel.hpp"
#include "team_kernel.hpp"
#include "trajectory_kernel.hpp"
#include "warp_kernel.hpp"

namespace collapse {
namespace cuda {
namespace {

// Headroom over the compiler's stack frame for the runtime's own calls.
constexpr std::size_t stack_headroom_bytes = 1024;

std::size_t host_memory_bytes() {
    const long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page_size > 0 ? static_cast<std::size_t>(pages) * static_cast<std::size_t>(page_size) : 0;
}

class CudaBackend final : public Backend {
public:
    explicit CudaBackend(int device = 0) {
        int device_count = 0;
        const cudaError_t counted = cudaGetDeviceCount(&device_count);
        if (counted != cudaSuccess) {
            (void)cudaGetLastError();
            throw BackendError(std::string("no usable CUDA device: cudaGetDeviceCount failed with ") +
                               cudaGetErrorName(counted) + " (" + cudaGetErrorString(counted) + ")");
        }
        if (device_count == 0) throw BackendError("no CUDA-capable device (cudaGetDeviceCount found none)");
        device_ = device % device_count;
        COLLAPSE_CUDA_CHECK(cudaSetDevice(device_));
        COLLAPSE_CUDA_CHECK(cudaGetDeviceProperties(&properties_, device_));
        limits_ = query_device_limits(device_);
        // Asking for each kernel's attributes loads it: a device this binary
        // has no code for fails here (cudaErrorNoKernelImageForDevice), so
        // --backend auto falls back to the CPU instead of failing mid-sweep.
        std::size_t stack_needed = 0;
        for (Precision precision : {Precision::float32, Precision::float64})
            for (IntegratorMethod method : {IntegratorMethod::gd, IntegratorMethod::rk4})
                stack_needed = std::max(stack_needed, kernel_resources(precision, method).local_bytes);
        // evaluate() keeps a few length-d rows per thread on the stack
        // (row_kernels.hpp: residuals, projections, the loss's four partial
        // sums; several KiB in double for the generic d); the limit must
        // cover the whole frame.
        std::size_t stack_limit = 0;
        COLLAPSE_CUDA_CHECK(cudaDeviceGetLimit(&stack_limit, cudaLimitStackSize));
        stack_bytes_ = std::max(stack_limit, stack_needed + stack_headroom_bytes);
        if (stack_bytes_ != stack_limit) COLLAPSE_CUDA_CHECK(cudaDeviceSetLimit(cudaLimitStackSize, stack_bytes_));
        // The team and warp kernels may use all of a block's opt-in shared memory (this
        // device's: 99 KiB on an A40 or L40S, 163 KiB on an A100, 227 KiB on an H100).
        allow_team_shared_memory(limits_.shared_bytes_per_block_optin);
        allow_warp_shared_memory(limits_.shared_bytes_per_block_optin);
        allow_block_shared_memory(limits_.shared_bytes_per_block_optin);
        runner_ = std::make_unique<DeviceBatchRunner>(limits_, kernel_choice_from_environment(),
                                                      fused_math_from_environment());
    }

    std::string name() const override { return "cuda"; }
    int host_threads_for_analysis() const override { return 0; }
    std::string device_name() const override { return properties_.name; }

    std::int64_t default_batch_size(const SweepSpec& spec) const override {
        std::size_t free_bytes = 0, total_bytes = 0;
        COLLAPSE_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
        BatchMemory memory;
        memory.free_device_bytes = free_bytes;
        memory.stack_bytes_per_thread = stack_bytes_;
        memory.device_bytes_per_trajectory = device_bytes_per_trajectory(spec);
        // Pinned host memory cannot be swapped: keep it to a quarter of RAM.
        memory.host_bytes = host_memory_bytes() / 4;
        memory.host_bytes_per_trajectory = host_bytes_per_trajectory(spec);
        return plan_batch_size(limits_, memory);
    }

    // The device pools of a batch (device_bytes_per_trajectory) and the
    // per-thread stacks against the device's free memory; on the host, the
    // pinned pools plus the setup pack_batch makes on every core.
    std::vector<MemoryBudget> memory_budgets(const SweepSpec& spec, std::int64_t batch_size) const override {
        COLLAPSE_CUDA_CHECK(cudaSetDevice(device_));
        std::size_t free_bytes = 0, total_bytes = 0;
        COLLAPSE_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
        MemoryBudget device;
        device.resource = "GPU " + std::to_string(device_) + " memory";
        device.available_source = "free memory of the " + std::string(properties_.name) + " (cudaMemGetInfo)";
        device.available = free_bytes;
        device.fixed = stack_bytes_ * static_cast<std::size_t>(properties_.multiProcessorCount) *
                       static_cast<std::size_t>(properties_.maxThreadsPerMultiProcessor);
        device.per_batch_slot = device_bytes_per_trajectory(spec);
        device.batch_size = batch_size;
        device.breakdown = "the per-thread stacks; each trajectory's state, gradient, workspace, traces and "
                           "initial-state pools take " + format_bytes(device.per_batch_slot);
        MemoryBudget host = cpu_memory_budget(spec, omp_get_max_threads(), batch_size, available_host_memory());
        host.per_batch_slot += host_bytes_per_trajectory(spec);
        return {device, host};
    }

    void run_batch(const SweepSpec& spec, const Grid& grid, std::span<const std::int64_t> flat_indices,
                   BatchOutput& out) override {
        if (spec.integrator.precision == Precision::float32)
            run_typed(spec, grid, flat_indices, single_, out);
        else
            run_typed(spec, grid, flat_indices, double_, out);
    }

private:
    template <class Real>
    void run_typed(const SweepSpec& spec, const Grid& grid, std::span<const std::int64_t> flat_indices,
                   HostBatch<Real>& host, BatchOutput& out) {
        COLLAPSE_CUDA_CHECK(cudaSetDevice(device_)); // the caller's thread may differ from the constructor's
        host.device_initial_states = initial_states_on_device_;
        pack_batch(spec, grid, flat_indices, host, out);
        // States larger than a block's shared memory: the lockstep cuBLAS path (docs/cuda-backend.md).
        // One path's pools at a time hold device memory (device_memory_tenancy.hpp).
        if (use_lockstep(host, spec.integrator.method, limits_, lockstep_choice_)) {
            if (!lockstep_) {
                lockstep_ = std::make_unique<LockstepRunner>();
                lockstep_->set_graph(lockstep_graph_);
            }
            device_memory_.hand_to(*lockstep_).run(host, spec.integrator.method, out);
        } else {
            device_memory_.hand_to(*runner_).run(host, spec.integrator.method, out);
        }
        unpack_final_states(spec, host, out);
    }


    int device_ = 0;
    cudaDeviceProp properties_{};
    DeviceLimits limits_;
    std::size_t stack_bytes_ = 0;
    DeviceMemoryTenancy device_memory_;
    std::unique_ptr<DeviceBatchRunner> runner_;
    std::unique_ptr<LockstepRunner> lockstep_; // made on first use
    LockstepChoice lockstep_choice_ = lockstep_choice_from_environment();
    bool lockstep_graph_ = lockstep_graph_from_environment(); // COLLAPSE_CUDA_LOCKSTEP_GRAPH, read when made
    // Initial states are made on the device (Thrust, initial_state_generation.hpp);
    // COLLAPSE_CUDA_INITIAL_STATES=host makes and uploads them on the host instead.
    bool initial_states_on_device_ =
        environment_choice("COLLAPSE_CUDA_INITIAL_STATES", {"device", "host"}) == 0;
    HostBatch<float> single_;  // pinned pools, reused across batches
    HostBatch<double> double_;
};

} // namespace
} // namespace cuda

std::unique_ptr<Backend> make_cuda_backend() { return std::make_unique<cuda::CudaBackend>(); }
std::unique_ptr<Backend> make_cuda_backend_on(int device) { return std::make_unique<cuda::CudaBackend>(device); }

} // namespace collapse
