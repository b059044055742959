#include "device_batch.hpp"

#include <thrust/execution_policy.h>
#include <thrust/fill.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include "block_kernel.hpp"
#include "cuda_check.hpp"
#include "device_buffer.hpp"
#include "device_transfers.hpp"
#include "environment_choice.hpp"
#include "team_kernel.hpp"
#include "trajectory_kernel.hpp"
#include "warp_kernel.hpp"

namespace collapse::cuda {
namespace {

template <class Real>
struct TypedPools {
    DeviceBuffer<TrajectoryTask<Real>> tasks;
    DeviceBuffer<Real> states, gradients, workspaces, scratch, label_degrees, inputs, team_streamed;
};

} // namespace

struct DeviceBatchRunner::Buffers {
    PerPrecision<TypedPools> typed;
    DeviceBuffer<int> primary_labels, second_labels, class_members;
    DeviceBuffer<unsigned long long> next_slot; // the thread kernel's work queue
    DeviceBuffer<std::int64_t> record_steps;
    DeviceResults results;
    DeviceInitialStates initial_states;
};

KernelChoice kernel_choice_from_environment() {
    return static_cast<KernelChoice>(
        environment_choice("COLLAPSE_CUDA_KERNEL", {"auto", "thread", "team", "warp", "block"}));
}

DeviceBatchRunner::DeviceBatchRunner(const DeviceLimits& limits, KernelChoice choice, FusedMath math)
    : buffers_(std::make_unique<Buffers>()), limits_(limits), choice_(choice), math_(math) {}

void DeviceBatchRunner::release_device_memory() { buffers_ = std::make_unique<Buffers>(); }

DeviceBatchRunner::~DeviceBatchRunner() = default;

template <class Real>
StatusCounts DeviceBatchRunner::run(HostBatch<Real>& host, IntegratorMethod method, BatchOutput& out) {
    Buffers& buffers = *buffers_;
    TypedPools<Real>& pools = buffers.typed.template get<Real>();
    const auto count = static_cast<std::size_t>(host.count);
    if (count == 0) return StatusCounts{};
    return translating_batch_errors("DeviceBatchRunner::run", "batch", count, [&] {
        upload(pools.tasks, host.tasks.data(), count, stream_);
        buffers.initial_states.place(host, pools.states, stream_);
        upload(pools.label_degrees, host.label_degrees.data(), host.sizes.label_degrees, stream_);
        upload(pools.inputs, host.inputs.data(), host.sizes.inputs, stream_);
        upload(buffers.primary_labels, host.primary_labels.data(), host.sizes.primary_labels, stream_);
        upload(buffers.second_labels, host.second_labels.data(), host.sizes.second_labels, stream_);
        upload(buffers.record_steps, host.record_steps.data(), host.record_steps.size(), stream_);
        // The fused block kernel when asked for and it supports the batch; else
        // the warp kernel for small states, the team kernel for the rest, each
        // where its shared-memory buffers fit; the thread kernel otherwise.
        BlockLaunchPlan block_plan;
        if (choice_ == KernelChoice::block) block_plan = plan_block_launch(host.tasks.data(), host.count, method, limits_, math_);
        const bool block = block_plan.threads_per_block > 0;
        const bool fallback = choice_ == KernelChoice::automatic || (choice_ == KernelChoice::block && !block);
        WarpLaunchPlan warp_plan;
        TeamLaunchPlan plan;
        const bool warp_wanted =
            choice_ == KernelChoice::warp || (fallback && prefer_warp_kernel(host.tasks[0].dims));
        if (warp_wanted) warp_plan = plan_warp_launch(host.tasks.data(), host.count, limits_);
        const bool warp = warp_plan.warps_per_block > 0;
        if (choice_ == KernelChoice::warp && !warp)
            throw BackendError("COLLAPSE_CUDA_KERNEL=warp, but one warp's buffers for this shape exceed the " +
                               std::to_string(limits_.shared_bytes_per_block_optin) +
                               " B of shared memory a block may use");
        const bool int_indices = std::all_of(host.tasks.data(), host.tasks.data() + host.count,
                                             [](const auto& task) { return team_indices_fit_int(task.dims); });
        if (!block && !warp && choice_ != KernelChoice::thread && int_indices)
            plan = plan_team_launch(host.tasks.data(), host.count, limits_);
        const bool team = !block && !warp && plan.threads_per_block > 0;
        if (choice_ == KernelChoice::team && !team)
            throw BackendError("COLLAPSE_CUDA_KERNEL=team, but this shape's team buffers exceed the " +
                               std::to_string(limits_.shared_bytes_per_block_optin) +
                               " B of shared memory a block may use");
        last_kernel_ = block ? (block_plan.math == FusedMath::tensor ? "block-tc" : "block") : warp ? "warp" : team ? "team" : "thread";
        const bool cooperative = block || warp || team; // class members instead of evaluate's workspace
        const char* kernel_name = block  ? "integrate_trajectories_block"
                                  : warp ? "integrate_trajectories_warp"
                                  : team ? "integrate_trajectories_team"
                                         : "integrate_trajectories";
        pools.gradients.resize(host.sizes.states);
        // Only the chosen kernel's pools take device memory.
        pools.workspaces.resize(cooperative ? 0 : host.sizes.workspaces);
        pools.team_streamed.resize((warp && warp_plan.shared_streamed_reals == 0) || team ? host.sizes.team_streamed : 0);
        buffers.class_members.resize(cooperative ? host.sizes.class_members : 0);
        buffers.next_slot.resize(1);
        pools.scratch.resize(host.sizes.scratch);
        DeviceResults& results = buffers.results;
        results.resize(count, host.record_steps.size());
        for (DeviceBuffer<double>* trace :
             {&results.label_distance, &results.projected_distance, &results.accuracy, &results.loss})
            // Entries after a trajectory's stopping step must read NaN (SPEC §3).
            thrust::fill(thrust::cuda::par.on(stream_), trace->data(), trace->end(),
                         std::numeric_limits<double>::quiet_NaN());
        // status not_run: the count below proves the kernel reached every trajectory.
        thrust::fill(thrust::cuda::par.on(stream_), results.summaries.data(), results.summaries.end(), TrajectorySummary{});

        TrajectoryKernelArgs<Real> args;
        args.count = host.count;
        args.tasks = pools.tasks.data();
        args.states = pools.states.data();
        args.gradients = pools.gradients.data();
        args.workspaces = pools.workspaces.data();
        args.scratch = pools.scratch.data();
        args.primary_labels = buffers.primary_labels.data();
        args.second_labels = buffers.second_labels.data();
        args.label_degrees = pools.label_degrees.data();
        args.inputs = pools.inputs.data();
        args.record_steps = buffers.record_steps.data();
        args.record_count = static_cast<int>(host.record_steps.size());
        results.point_at(args);
        args.team_streamed = pools.team_streamed.data();
        args.class_members = buffers.class_members.data();
        args.next_slot = buffers.next_slot.data();
        if (block) launch_block_kernel(args, block_plan, stream_);
        else if (warp) launch_warp_kernel(args, warp_plan, method, limits_.multiprocessors, stream_);
        else if (team) launch_team_kernel(args, plan, method, stream_);
        else launch_trajectory_kernel(args, method, limits_.multiprocessors, stream_);
        // Synchronise here so that a fault inside the kernel is reported as the kernel's.
        const std::string synchronised = std::string(kernel_name) + " kernel (cudaStreamSynchronize after the launch)";
        check_cuda(cudaStreamSynchronize(stream_), synchronised.c_str(),
                   __FILE__ ":" COLLAPSE_CUDA_STRINGIFY(__LINE__));
        return results.collect(host, pools.states, out, std::string("CUDA kernel ") + kernel_name, stream_);
    });
}

template StatusCounts DeviceBatchRunner::run<float>(HostBatch<float>&, IntegratorMethod, BatchOutput&);
template StatusCounts DeviceBatchRunner::run<double>(HostBatch<double>&, IntegratorMethod, BatchOutput&);

} // namespace collapse::cuda
