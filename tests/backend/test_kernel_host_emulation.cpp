// CUDA builds only, no device needed: runs the CUDA backend's host packing,
// a kernel's body executed on the host over the same pools and offsets, and
// the unpacking, and checks the result against the CPU backend. For the
// thread kernel the body is run_batch_slot; for the team kernel it is
// run_team_slot, with a block emulated by std::threads and a barrier. This
// covers everything of a GPU batch except the transfers and the device
// arithmetic, on every CI run.
#include <gtest/gtest.h>

#include <set>

#include "backend_test_support.hpp"
#include "collapse/sweep/grid.hpp"
#include "kernel_emulation.hpp"

namespace collapse::testing {
namespace {

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
    HostEmulatedCudaBackend team(EmulatedKernel::team(3));
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
    HostEmulatedCudaBackend team(EmulatedKernel::team(3));
    expect_close_results(run_grid(*cpu, spec, 64), run_grid(team, spec, 64), 1e-9);
}

// Batch size, block order and where the state lives change nothing; the team
// size changes only the order of the loss's final sum.
TEST(TeamKernelHostEmulation, ResultsDependOnNeitherBatchNorPlacement) {
    const SweepSpec spec = mixed_spec(Precision::float64, IntegratorMethod::gd);
    HostEmulatedCudaBackend shared_state(EmulatedKernel::team(3, true)), global_state(EmulatedKernel::team(3, false));
    const auto expected = run_grid(shared_state, spec, 64);
    expect_bit_identical(expected, run_grid(shared_state, spec, 7));
    expect_bit_identical(expected, run_grid(global_state, spec, 64));
    HostEmulatedCudaBackend other_team_size(EmulatedKernel::team(5));
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
