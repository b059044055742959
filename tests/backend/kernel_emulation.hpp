// The CUDA backend's batch on the host, with a kernel's body run over the same
// pools and offsets as on the device (CUDA builds only, no device needed):
// the thread kernel's run_batch_slot, the team kernel's run_team_slot on a
// block emulated by std::threads and a barrier, and the warp kernel's
// run_warp_slot on warps emulated by 32 coroutine lanes (warp_emulation.hpp),
// and the fused block kernel's run_block_slot on a block of coroutine lanes.
#pragma once

#include <algorithm>
#include <barrier>
#include <cmath>
#include <limits>
#include <random>
#include <thread>
#include <type_traits>
#include <vector>

#include "backend_test_support.hpp"
#include "batch_packing.hpp"
#include "block_kernel.hpp"
#include "collapse/integrators/gradient_descent.hpp"
#include "collapse/integrators/runge_kutta4.hpp"
#include "device_limits.hpp"
#include "team_kernel.hpp"
#include "trajectory_kernel.hpp"
#include "warp_emulation.hpp"
#include "warp_kernel.hpp"

namespace collapse::testing {

// A CUDA block on the host: `size` std::threads meeting at a barrier.
struct ThreadTeam {
    int rank;
    int size;
    std::barrier<>* barrier;
    double* slots;
    void sync() const { barrier->arrive_and_wait(); }
    double sum(double value) const { return slot_sum(*this, slots, value); }
    double min(double value) const { return slot_min(*this, slots, value); }
};

// The registers an emulated mma.sync exchanges within one warp: each lane
// writes its A and B fragments, the warp syncs, the first lane to go on
// places all 32 lanes' fragments by the PTX ISA's layouts
// (mma::assemble_operands) and each lane computes its own entries of D
// (mma::lane_result). Two rounds' buffers taken in turn: a lane writes round
// p + 1's only after the warp sync that follows every lane's reading of round p - 1.
template <class A, class B, class Shape>
struct WarpRound {
    A a[mma::lanes_per_warp];
    B b[mma::lanes_per_warp];
    mma::WarpOperands<Shape> operands;
    bool assembled = false;
};
struct WarpFragmentExchange {
    WarpRound<mma::Tf32A, mma::Tf32B, mma::Tf32Shape> tf32[2];
    WarpRound<mma::F64A, mma::F64B, mma::F64Shape> f64[2];
    unsigned calls[mma::lanes_per_warp] = {};
};

// A CUDA block on coroutine lanes (warp_emulation.hpp): every lane runs to
// its next barrier, in rank order; reductions over slots in rank order, as
// BlockTeam (kernels/block_team.cuh) does. Deterministic and with no OS
// threads, so blocks of 256 lanes cost little on two cores. mma() is the
// warp-collective of the tensor path (mma::warp_mma).
struct EmulatedBlockTeam {
    int rank;
    int size;
    LaneScheduler* lanes;
    double* slots;                    // `size` entries
    WarpFragmentExchange* exchange;   // one per warp
    void sync() const { lanes->sync(rank); }
    double sum(double value) const { return slot_sum(*this, slots, value); }
    double min(double value) const { return slot_min(*this, slots, value); }

    template <class C, class A, class B>
    void mma(C& c, const A& a, const B& b) const {
        WarpFragmentExchange& warp = exchange[rank / mma::lanes_per_warp];
        const int lane = rank % mma::lanes_per_warp;
        const unsigned turn = warp.calls[lane]++ % 2;
        auto& round = [&]() -> auto& {
            if constexpr (std::is_same_v<A, mma::Tf32A>) return warp.tf32[turn];
            else return warp.f64[turn];
        }();
        round.a[lane] = a;
        round.b[lane] = b;
        round.assembled = false;
        lanes->sync_warp(rank);
        if (!round.assembled) mma::assemble_operands(round.a, round.b, round.operands);
        round.assembled = true;
        c = mma::lane_result(lane, round.operands, c);
    }
};

// Which kernel body the emulation runs.
struct EmulatedKernel {
    enum class Kind { thread, team, warp, block } kind = Kind::thread;
    int team_size = 0; // team kernel: threads per emulated block; fused block kernel: 0 = the plan's
    bool state_in_shared_memory = true;
    cuda::DeviceLimits limits = cuda::DeviceLimits::sm90_h100(); // plans of the team and warp kernels

    static EmulatedKernel team(int size, bool state_in_shared = true) {
        EmulatedKernel kernel;
        kernel.kind = Kind::team;
        kernel.team_size = size;
        kernel.state_in_shared_memory = state_in_shared;
        return kernel;
    }
    int tile_samples = 0; // fused block kernel: 0 = the plan's
    FusedMath math = FusedMath::fma; // fused block kernel: what the plan is asked for
    static EmulatedKernel block(int threads = 0, int tile = 0, cuda::DeviceLimits limits = cuda::DeviceLimits::sm90_h100()) {
        EmulatedKernel kernel;
        kernel.kind = Kind::block;
        kernel.team_size = threads;
        kernel.tile_samples = tile;
        kernel.limits = limits;
        return kernel;
    }
    // The fused block kernel with its products on (emulated) tensor cores.
    static EmulatedKernel block_tensor(int threads = 0, int tile = 0) {
        EmulatedKernel kernel = block(threads, tile);
        kernel.math = FusedMath::tensor;
        return kernel;
    }
    static EmulatedKernel warp(cuda::DeviceLimits limits = cuda::DeviceLimits::sm90_h100(), bool state_in_shared = true) {
        EmulatedKernel kernel;
        kernel.kind = Kind::warp;
        kernel.limits = limits;
        kernel.state_in_shared_memory = state_in_shared;
        return kernel;
    }
};

template <class Real, class Integrator>
void run_team_on_threads(const cuda::TrajectoryKernelArgs<Real>& args, const cuda::TeamLaunchPlan& plan, int team_size,
                         std::int64_t slot) {
    std::barrier<> barrier(team_size);
    std::vector<double> slots(static_cast<std::size_t>(team_size));
    // "Shared memory", poisoned: the team must write before it reads.
    std::vector<Real> resident(plan.resident_reals, Real(-7)), shared_state(plan.shared_state_reals, Real(-7));
    std::vector<std::thread> threads;
    for (int rank = 0; rank < team_size; ++rank)
        threads.emplace_back([&, rank] {
            const ThreadTeam team{rank, team_size, &barrier, slots.data()};
            cuda::run_team_slot<Real, Integrator>(team, args, slot, resident.data(),
                                                  plan.shared_state_reals > 0 ? shared_state.data() : nullptr);
        });
    for (std::thread& thread : threads) thread.join();
}

// One block of the fused kernel on trajectory `slot`, its shared memory
// poisoned with NaN (the block must write before it reads). One scheduler
// serves a batch's blocks: it keeps the lanes' stacks.
template <class Real, int D>
void run_block_on_lanes(LaneScheduler& scheduler, const cuda::TrajectoryKernelArgs<Real>& args,
                        const cuda::BlockLaunchPlan& plan, std::int64_t slot) {
    std::vector<double> slots(static_cast<std::size_t>(plan.threads_per_block), std::nan(""));
    std::vector<Real> shared(plan.shared_reals, std::numeric_limits<Real>::quiet_NaN());
    std::vector<WarpFragmentExchange> exchange(static_cast<std::size_t>(plan.threads_per_block + 31) / 32);
    scheduler.run(plan.threads_per_block, [&](int lane) {
        const EmulatedBlockTeam team{lane, plan.threads_per_block, &scheduler, slots.data(), exchange.data()};
        if (plan.math == FusedMath::tensor)
            cuda::run_block_slot<Real, D, FusedMath::tensor>(team, args, plan, slot, shared.data());
        else cuda::run_block_slot<Real, D>(team, args, plan, slot, shared.data());
    });
}

template <class Real>
void run_block_slot_on_lanes(LaneScheduler& scheduler, const cuda::TrajectoryKernelArgs<Real>& args,
                             const cuda::BlockLaunchPlan& plan, std::int64_t slot) {
    switch (plan.dim) {
    case 8: run_block_on_lanes<Real, 8>(scheduler, args, plan, slot); break;
    case 16: run_block_on_lanes<Real, 16>(scheduler, args, plan, slot); break;
    case 32: run_block_on_lanes<Real, 32>(scheduler, args, plan, slot); break;
    case 64: run_block_on_lanes<Real, 64>(scheduler, args, plan, slot); break;
    default: ADD_FAILURE() << "no fused block kernel for d = " << plan.dim;
    }
}

// The warp kernel's grid on the host: the work queue hands out the slots in
// `order`, to the warps of one block in turn. Each warp keeps its slice of the
// block's poisoned shared memory from one trajectory to the next, as on the
// device, and must not touch its neighbours' slices.
template <class Real, class Integrator>
void run_warps_on_lanes(const cuda::TrajectoryKernelArgs<Real>& args, const cuda::WarpLaunchPlan& plan,
                        const std::vector<std::int64_t>& order) {
    std::vector<Real> shared(static_cast<std::size_t>(plan.warps_per_block) * plan.slice_reals, Real(-7));
    LaneScheduler scheduler;
    std::vector<double> slots(warp_lanes);
    for (std::size_t taken = 0; taken < order.size(); ++taken) {
        const auto warp = static_cast<std::size_t>(taken % static_cast<std::size_t>(plan.warps_per_block));
        Real* slice = shared.data() + warp * plan.slice_reals;
        const std::vector<Real> before = shared;
        scheduler.run(warp_lanes, [&](int lane) {
            const EmulatedWarpTeam team{lane, &scheduler, slots.data()};
            cuda::run_warp_slot<Real, Integrator>(team, args, plan, order[taken], slice);
        });
        for (std::size_t e = 0; e < shared.size(); ++e)
            if (e / plan.slice_reals != warp && !(shared[e] == before[e] || (shared[e] != shared[e] && before[e] != before[e]))) {
                ADD_FAILURE() << "warp " << warp << " wrote entry " << e << " of another warp's slice";
                break;
            }
    }
}

// A Backend whose run_batch is what CudaBackend does, with the kernel launch
// replaced by a host loop over the kernel's body.
class HostEmulatedCudaBackend final : public HostTestBackend<HostEmulatedCudaBackend> {
public:
    explicit HostEmulatedCudaBackend(EmulatedKernel kernel = {}) : kernel_(kernel) {}

    std::string name() const override { return "cuda-host-emulation"; }

    template <class Real>
    void run_typed(const SweepSpec& spec, const Grid& grid, std::span<const std::int64_t> flat_indices,
                   BatchOutput& out) {
        cuda::HostBatch<Real> host(cuda::HostMemory::pageable);
        cuda::pack_batch(spec, grid, flat_indices, host, out);
        // The device pools, here on the host; poison what the kernel must write.
        std::vector<Real> gradients(host.sizes.states, Real(-7)), workspaces(host.sizes.workspaces, Real(-7)),
            scratch(host.sizes.scratch, Real(-7)), team_streamed(host.sizes.team_streamed, Real(-7));
        std::vector<int> class_members(host.sizes.class_members, -7);
        for (TrajectorySummary& summary : out.summary) summary = TrajectorySummary{};
        cuda::TrajectoryKernelArgs<Real> args;
        args.count = host.count;
        args.tasks = host.tasks.data();
        args.states = host.states.data();
        args.gradients = gradients.data();
        args.workspaces = workspaces.data();
        args.scratch = scratch.data();
        args.primary_labels = host.primary_labels.data();
        args.second_labels = host.second_labels.data();
        args.label_degrees = host.label_degrees.data();
        args.inputs = host.inputs.data();
        args.record_steps = host.record_steps.data();
        args.record_count = static_cast<int>(host.record_steps.size());
        cuda::point_results_at(args, out);
        args.team_streamed = team_streamed.data();
        args.class_members = class_members.data();
        // Blocks and warps retire in any order on a GPU: shuffle the slots.
        std::vector<std::int64_t> order(static_cast<std::size_t>(host.count));
        for (std::size_t b = 0; b < order.size(); ++b) order[b] = static_cast<std::int64_t>(b);
        std::shuffle(order.begin(), order.end(), std::mt19937(static_cast<unsigned>(host.count)));
        const bool rk4 = spec.integrator.method == IntegratorMethod::rk4;
        switch (kernel_.kind) {
        case EmulatedKernel::Kind::thread:
            // Slots in reverse, so nothing can rely on running in order.
            for (std::int64_t slot = host.count; slot-- > 0;) {
                if (rk4) cuda::run_batch_slot<Real, RungeKutta4>(args, slot);
                else cuda::run_batch_slot<Real, GradientDescent>(args, slot);
            }
            break;
        case EmulatedKernel::Kind::team: {
            const cuda::TeamLaunchPlan plan =
                cuda::plan_team_launch(host.tasks.data(), host.count, kernel_.limits,
                                       kernel_.state_in_shared_memory);
            EXPECT_GT(plan.threads_per_block, 0);
            for (std::int64_t slot : order) {
                if (rk4) run_team_on_threads<Real, RungeKutta4>(args, plan, kernel_.team_size, slot);
                else run_team_on_threads<Real, GradientDescent>(args, plan, kernel_.team_size, slot);
            }
            break;
        }
        case EmulatedKernel::Kind::block: {
            cuda::BlockLaunchPlan plan = cuda::plan_block_launch(host.tasks.data(), host.count, spec.integrator.method,
                                                                 kernel_.limits, kernel_.math);
            EXPECT_GT(plan.threads_per_block, 0);
            if (kernel_.team_size > 0) plan.threads_per_block = kernel_.team_size;
            if (kernel_.tile_samples > 0) {
                plan.tile_samples = kernel_.tile_samples;
                plan.shared_reals = FusedBlockLayout(host.tasks[0].dims.classes, host.tasks[0].dims.dim, true,
                                                     kernel_.tile_samples, sizeof(Real)).reals;
            }
            block_plans_.push_back(plan);
            LaneScheduler scheduler;
            for (std::int64_t slot : order) run_block_slot_on_lanes<Real>(scheduler, args, plan, slot);
            break;
        }
        case EmulatedKernel::Kind::warp: {
            const cuda::WarpLaunchPlan plan = cuda::plan_warp_launch(host.tasks.data(), host.count, kernel_.limits,
                                                                     kernel_.state_in_shared_memory);
            EXPECT_GT(plan.warps_per_block, 0);
            warp_plans_.push_back(plan);
            if (rk4) run_warps_on_lanes<Real, RungeKutta4>(args, plan, order);
            else run_warps_on_lanes<Real, GradientDescent>(args, plan, order);
            break;
        }
        }
        cuda::unpack_final_states(spec, host, out);
    }

    // Whether any batch so far had its state / rows in shared memory.
    bool some_state_in_shared() const {
        return std::any_of(warp_plans_.begin(), warp_plans_.end(), [](const auto& p) { return p.shared_state_reals > 0; });
    }
    bool some_rows_in_shared() const {
        return std::any_of(warp_plans_.begin(), warp_plans_.end(), [](const auto& p) { return p.shared_streamed_reals > 0; });
    }

    // The fused block kernel's plans, one per batch so far.
    const std::vector<cuda::BlockLaunchPlan>& block_plans() const { return block_plans_; }

private:
    EmulatedKernel kernel_;
    std::vector<cuda::WarpLaunchPlan> warp_plans_;
    std::vector<cuda::BlockLaunchPlan> block_plans_;
};

} // namespace collapse::testing
