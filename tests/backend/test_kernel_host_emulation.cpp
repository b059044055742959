// CUDA builds only, no device needed: runs the CUDA backend's host packing,
// a kernel's body executed on the host over the same pools and offsets, and
// the unpacking, and checks the result against the CPU backend. For the
// thread kernel the body is run_batch_slot; for the team kernel it is
// run_team_slot, with a block emulated by std::threads and a barrier. This
// covers everything of a GPU batch except the transfers and the device
// arithmetic, on every CI run.
#include <gtest/gtest.h>

#include <algorithm>
#include <barrier>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "backend_test_support.hpp"
#include "batch_packing.hpp"
#include "collapse/integrators/gradient_descent.hpp"
#include "collapse/integrators/runge_kutta4.hpp"
#include "collapse/sweep/grid.hpp"
#include "team_kernel.hpp"
#include "trajectory_kernel.hpp"

namespace collapse::testing {
namespace {

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

// Which kernel body the emulation runs. team_size 0 = the thread kernel.
struct EmulatedKernel {
    int team_size = 0;
    bool state_in_shared_memory = true;
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
        args.label_distance = out.label_distance_trace.data();
        args.projected_distance = out.projected_distance_trace.data();
        args.accuracy = out.accuracy_trace.data();
        args.loss = out.loss_trace.data();
        args.summaries = out.summary.data();
        args.team_streamed = team_streamed.data();
        args.class_members = class_members.data();
        const bool rk4 = spec.integrator.method == IntegratorMethod::rk4;
        if (kernel_.team_size == 0) {
            // Slots in reverse, so nothing can rely on running in order.
            for (std::int64_t slot = host.count; slot-- > 0;) {
                if (rk4) cuda::run_batch_slot<Real, RungeKutta4>(args, slot);
                else cuda::run_batch_slot<Real, GradientDescent>(args, slot);
            }
        } else {
            // An H100's opt-in limit; the plan decides where the state lives.
            const cuda::TeamLaunchPlan plan =
                cuda::plan_team_launch(host.tasks.data(), host.count, cuda::DeviceLimits::sm90_h100(),
                                       kernel_.state_in_shared_memory);
            EXPECT_GT(plan.threads_per_block, 0);
            // Blocks retire in any order on a GPU: shuffle the slots.
            std::vector<std::int64_t> order(static_cast<std::size_t>(host.count));
            for (std::size_t b = 0; b < order.size(); ++b) order[b] = static_cast<std::int64_t>(b);
            std::shuffle(order.begin(), order.end(), std::mt19937(static_cast<unsigned>(host.count)));
            for (std::int64_t slot : order) {
                if (rk4) run_team_on_threads<Real, RungeKutta4>(args, plan, kernel_.team_size, slot);
                else run_team_on_threads<Real, GradientDescent>(args, plan, kernel_.team_size, slot);
            }
        }
        cuda::unpack_final_states(spec, host, out);
    }

private:
    EmulatedKernel kernel_;
};

class KernelHostEmulation : public ::testing::TestWithParam<std::tuple<Precision, IntegratorMethod>> {};

TEST_P(KernelHostEmulation, PackingAndKernelBodyReproduceTheCpuBackend) {
    const auto [precision, method] = GetParam();
    const SweepSpec spec = mixed_spec(precision, method);
    const auto cpu = make_cpu_backend(1);
    HostEmulatedCudaBackend emulated;
    // Same code, same compiler: bit for bit. Batch sizes exercise offsets.
    const auto expected = run_grid(*cpu, spec, 64);
    for (std::int64_t batch_size : {1, 7, 64}) {
        SCOPED_TRACE("batch size " + std::to_string(batch_size));
        expect_bit_identical(expected, run_grid(emulated, spec, batch_size));
    }
}

INSTANTIATE_TEST_SUITE_P(PrecisionAndMethod, KernelHostEmulation,
                         ::testing::Combine(::testing::Values(Precision::float32, Precision::float64),
                                            ::testing::Values(IntegratorMethod::gd, IntegratorMethod::rk4)));

TEST(KernelHostEmulation, TeacherStudentReproducesTheCpuBackend) {
    const SweepSpec spec = teacher_student_spec(Precision::float64);
    const auto cpu = make_cpu_backend(1);
    HostEmulatedCudaBackend emulated;
    expect_bit_identical(run_grid(*cpu, spec, 64), run_grid(emulated, spec, 5));
}

// The team kernel sums in another order than the CPU backend: the parity
// bounds of the CUDA backend (issue 4) hold, not bit-identity.
class TeamKernelHostEmulation : public ::testing::TestWithParam<std::tuple<Precision, IntegratorMethod>> {};

TEST_P(TeamKernelHostEmulation, MatchesTheCpuBackend) {
    const auto [precision, method] = GetParam();
    const SweepSpec spec = parity_spec(precision, method);
    const auto cpu = make_cpu_backend(1);
    HostEmulatedCudaBackend team(EmulatedKernel{3});
    const auto expected = run_grid(*cpu, spec, 64);
    std::set<TrajectoryStatus> statuses;
    for (const auto& [flat, output] : expected) statuses.insert(output.summary[0].status);
    EXPECT_EQ(statuses.size(), 3u) << "the parity grid should have stable, collapsed and diverged trajectories";
    const auto actual = run_grid(team, spec, 64);
    if (precision == Precision::float64) expect_close_results(expected, actual, 1e-9);
    else expect_same_statuses(expected, actual, 0.01);
}

INSTANTIATE_TEST_SUITE_P(PrecisionAndMethod, TeamKernelHostEmulation,
                         ::testing::Combine(::testing::Values(Precision::float32, Precision::float64),
                                            ::testing::Values(IntegratorMethod::gd, IntegratorMethod::rk4)));

TEST(TeamKernelHostEmulation, TeacherStudentMatchesTheCpuBackend) {
    SweepSpec spec = teacher_student_spec(Precision::float64);
    spec.axes[3].values = {0.06, 4.0}; // not the chaotic lr (parity_spec)
    const auto cpu = make_cpu_backend(1);
    HostEmulatedCudaBackend team(EmulatedKernel{3});
    expect_close_results(run_grid(*cpu, spec, 64), run_grid(team, spec, 64), 1e-9);
}

// Batch size, block order and where the state lives change nothing; the team
// size changes only the order of the loss's final sum.
TEST(TeamKernelHostEmulation, ResultsDependOnNeitherBatchNorPlacement) {
    const SweepSpec spec = mixed_spec(Precision::float64, IntegratorMethod::gd);
    HostEmulatedCudaBackend shared_state(EmulatedKernel{3, true}), global_state(EmulatedKernel{3, false});
    const auto expected = run_grid(shared_state, spec, 64);
    expect_bit_identical(expected, run_grid(shared_state, spec, 7));
    expect_bit_identical(expected, run_grid(global_state, spec, 64));
    HostEmulatedCudaBackend other_team_size(EmulatedKernel{5});
    expect_close_results(expected, run_grid(other_team_size, spec, 64), 1e-13);
}

TEST(TeamLaunchPlan, PlacesTheStateInSharedMemoryWhileItFits) {
    // The medium shape, float32: K = 10, N = 1000, d = 32, h = 32.
    cuda::TrajectoryTask<float> task;
    task.dims = TrajectoryDims{10, 1000, 32, 32, 0};
    const std::size_t state = StateLayout(task.dims).size, resident = TeamWorkspaceLayout(task.dims).resident_size;
    EXPECT_EQ(cuda::team_threads_for(task.dims), 256);
    const cuda::TeamLaunchPlan roomy = cuda::plan_team_launch(&task, 1, cuda::DeviceLimits::sm90_h100());
    EXPECT_EQ(roomy.threads_per_block, 256);
    EXPECT_EQ(roomy.resident_reals, resident);
    EXPECT_EQ(roomy.shared_state_reals, state);
    EXPECT_EQ(roomy.shared_bytes, 256 * sizeof(double) + (resident + state) * sizeof(float));
    // float64 doubles the state past the limit: it stays in global memory.
    cuda::TrajectoryTask<double> wide;
    wide.dims = task.dims;
    const cuda::TeamLaunchPlan global = cuda::plan_team_launch(&wide, 1, cuda::DeviceLimits::sm90_h100());
    EXPECT_EQ(global.threads_per_block, 256);
    EXPECT_EQ(global.shared_state_reals, 0u);
    // d = 128 (W and G alone are 256 KiB in float64): no team plan.
    wide.dims.dim = 128;
    EXPECT_EQ(cuda::plan_team_launch(&wide, 1, cuda::DeviceLimits::sm90_h100()).threads_per_block, 0);
    // The small shape (N d = 1600) gets 128 threads, the tiny test shape 32.
    EXPECT_EQ(cuda::team_threads_for(TrajectoryDims{4, 200, 8, 8, 0}), 128);
    EXPECT_EQ(cuda::team_threads_for(TrajectoryDims{3, 24, 4, 3, 0}), 32);
}

} // namespace
} // namespace collapse::testing
