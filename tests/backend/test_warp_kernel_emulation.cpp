// The warp-per-trajectory kernel without a device (CUDA builds): its body
// (run_warp_slot) on warps of 32 coroutine lanes (warp_emulation.hpp) over
// the CUDA backend's own pools, against the CPU backend; its butterfly
// reductions against the shuffle form the device runs; its launch plans for
// the shared memory of an H100 (227 KiB), an A100 (163 KiB) and an A40/L40S
// (99 KiB).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <random>
#include <set>
#include <stdexcept>

#include "backend_test_support.hpp"
#include "device_batch.hpp"
#include "kernel_emulation.hpp"

namespace collapse::testing {
namespace {

// Values whose sum depends on the order: magnitudes from 1e-8 to 1e8, both signs.
std::vector<double> order_sensitive_values(unsigned seed) {
    std::mt19937 generator(seed);
    std::uniform_real_distribution<double> exponent(-8, 8), sign(-1, 1);
    std::vector<double> values(warp_lanes);
    for (double& value : values) value = std::copysign(std::pow(10.0, exponent(generator)), sign(generator));
    return values;
}

// What lane `rank` holds after the device's per-lane butterfly, with
// __shfl_xor_sync emulated by the lanes' shared slots.
template <class Combine>
std::vector<double> per_lane_butterfly(const std::vector<double>& values, Combine combine) {
    LaneScheduler scheduler;
    std::vector<double> slots(warp_lanes), result(warp_lanes);
    scheduler.run(warp_lanes, [&](int lane) {
        const EmulatedWarpTeam team{lane, &scheduler, slots.data()};
        result[static_cast<std::size_t>(lane)] = butterfly_reduce(
            lane, warp_lanes, values[static_cast<std::size_t>(lane)],
            [&](double value, int offset) { return team.shuffle_xor(value, offset); }, combine);
    });
    return result;
}

TEST(WarpButterfly, EveryLaneGetsTheBitsOfTheFixedTree) {
    for (unsigned seed = 1; seed <= 20; ++seed) {
        const std::vector<double> values = order_sensitive_values(seed);
        // The tree lane 0 computes, written out: level n adds entry j + n to entry j.
        std::vector<double> tree = values;
        for (int n = warp_lanes / 2; n >= 1; n /= 2)
            for (int j = 0; j < n; ++j) tree[static_cast<std::size_t>(j)] += tree[static_cast<std::size_t>(j + n)];
        std::vector<double> all = values;
        EXPECT_EQ(butterfly_reduce_all(all.data(), warp_lanes, SumCombine{}), tree[0]) << seed;
        for (double lane_sum : per_lane_butterfly(values, SumCombine{})) EXPECT_EQ(lane_sum, tree[0]) << seed;
    }
    // The sums really are order-sensitive, so the test above can tell orders apart.
    const std::vector<double> values = order_sensitive_values(3);
    double forward = 0, backward = 0;
    for (int lane = 0; lane < warp_lanes; ++lane) {
        forward += values[static_cast<std::size_t>(lane)];
        backward += values[static_cast<std::size_t>(warp_lanes - 1 - lane)];
    }
    EXPECT_NE(forward, backward);
}

TEST(WarpButterfly, MinimumHasTheSameBitsOnEveryLane) {
    // +0 and -0 compare equal, so which one survives depends on the pairing
    // order: the tree keeps the lower lane of each pair, and every lane the same.
    std::vector<double> values(warp_lanes, 1.0);
    values[5] = 0.0;
    values[20] = -0.0;
    std::vector<double> all = values;
    const double expected = butterfly_reduce_all(all.data(), warp_lanes, MinCombine{});
    EXPECT_EQ(expected, 0.0);
    EXPECT_TRUE(std::signbit(expected)); // lane 4 takes lane 20's -0 at offset 16, then beats lane 5 at offset 1
    for (double lane_min : per_lane_butterfly(values, MinCombine{})) {
        EXPECT_EQ(lane_min, 0.0);
        EXPECT_EQ(std::signbit(lane_min), std::signbit(expected));
    }
}

TEST(LaneScheduler, ALaneThatSkipsASyncIsReported) {
    LaneScheduler scheduler;
    EXPECT_THROW(scheduler.run(warp_lanes,
                               [&](int lane) {
                                   if (lane != 7) scheduler.sync(lane);
                               }),
                 std::logic_error);
    // and lanes that all sync equally often run in rank order between syncs
    std::vector<int> seen;
    scheduler.run(4, [&](int lane) {
        seen.push_back(lane);
        scheduler.sync(lane);
        seen.push_back(10 + lane);
    });
    EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 3, 10, 11, 12, 13}));
}

// Against the CPU backend on the parity grid: the warp sums in another order
// (the fixed butterfly), so the parity bounds hold, not bit-identity.
class WarpKernelHostEmulation : public ::testing::TestWithParam<std::tuple<Precision, IntegratorMethod>> {};

TEST_P(WarpKernelHostEmulation, MatchesTheCpuBackend) {
    const auto [precision, method] = GetParam();
    const SweepSpec spec = parity_spec(precision, method);
    const auto cpu = make_cpu_backend(1);
    HostEmulatedCudaBackend warp(EmulatedKernel::warp());
    const auto expected = run_grid(*cpu, spec, 64);
    const auto actual = run_grid(warp, spec, 64);
    EXPECT_TRUE(warp.some_state_in_shared()) << "the tiny shape's state fits in shared memory";
    if (precision == Precision::float64) expect_close_results(expected, actual, 1e-9);
    else expect_same_statuses(expected, actual, 0.01);
}

INSTANTIATE_TEST_SUITE_P(PrecisionAndMethod, WarpKernelHostEmulation,
                         ::testing::Combine(::testing::Values(Precision::float32, Precision::float64),
                                            ::testing::Values(IntegratorMethod::gd, IntegratorMethod::rk4)));

TEST(WarpKernelHostEmulation, TeacherStudentMatchesTheCpuBackend) {
    SweepSpec spec = teacher_student_spec(Precision::float64);
    spec.axes[3].values = {0.06, 4.0}; // not the chaotic lr (parity_spec)
    const auto cpu = make_cpu_backend(1);
    HostEmulatedCudaBackend warp(EmulatedKernel::warp());
    expect_close_results(run_grid(*cpu, spec, 64), run_grid(warp, spec, 64), 1e-9);
}

// SPEC §5: batch size, the order warps take trajectories, the warps per block
// and where the state and rows live (the device's shared-memory limit decides)
// change no bit.
TEST(WarpKernelHostEmulation, BitIdenticalAcrossBatchesOrderAndPlacement) {
    for (Precision precision : {Precision::float64, Precision::float32}) {
        SCOPED_TRACE(precision == Precision::float64 ? "float64" : "float32");
        const SweepSpec spec = mixed_spec(precision, IntegratorMethod::gd);
        HostEmulatedCudaBackend h100(EmulatedKernel::warp()), global(EmulatedKernel::warp(cuda::DeviceLimits::sm90_h100(), false));
        const auto expected = run_grid(h100, spec, 64);
        EXPECT_TRUE(h100.some_rows_in_shared());
        expect_bit_identical(expected, run_grid(h100, spec, 7));
        expect_bit_identical(expected, run_grid(global, spec, 13));
        EXPECT_FALSE(global.some_state_in_shared());
        // 4 KiB per multiprocessor: too few warps would stay resident, so the state stays in global memory.
        cuda::DeviceLimits small = cuda::DeviceLimits::sm86_a40();
        small.shared_bytes_per_multiprocessor = 4 * 1024;
        HostEmulatedCudaBackend cramped(EmulatedKernel::warp(small));
        expect_bit_identical(expected, run_grid(cramped, spec, 64));
        EXPECT_FALSE(cramped.some_state_in_shared());
    }
}

TEST(WarpKernelHostEmulation, Rk4IsBitIdenticalAcrossBatches) {
    const SweepSpec spec = mixed_spec(Precision::float64, IntegratorMethod::rk4);
    HostEmulatedCudaBackend warp(EmulatedKernel::warp());
    expect_bit_identical(run_grid(warp, spec, 64), run_grid(warp, spec, 5));
}

// Launch plans from the device's limits (no H100 constants).
TEST(WarpLaunchPlan, PlacesStateAndRowsWhileEnoughWarpsStayResident) {
    // The small benchmark shape, K = 4, N = 200, d = 8, h = 8, float32.
    cuda::TrajectoryTask<float> task;
    task.dims = TrajectoryDims{4, 200, 8, 8, 0};
    const std::size_t resident = TeamWorkspaceLayout(task.dims).resident_size;
    const std::size_t streamed = TeamWorkspaceLayout(task.dims).streamed_size;
    const std::size_t state = StateLayout(task.dims).size;
    EXPECT_EQ(resident, 3u * 64 + 4u * 32);
    EXPECT_EQ(streamed, 2u * 1600);
    EXPECT_EQ(state, 1600u + 32 + 2 * 64);
    struct Expected {
        cuda::DeviceLimits limits;
        bool rows_in_shared;
    };
    // With rows, a 4-warp block takes 82.5 KiB: two fit an H100 multiprocessor (8 warps), one an
    // A100's or A40's (4 warps, too few); with the state alone (32.5 KiB) four fit an A100's, two an A40's.
    for (const auto& [limits, rows_in_shared] :
         {Expected{cuda::DeviceLimits::sm90_h100(), true}, Expected{cuda::DeviceLimits::sm80_a100(), false},
          Expected{cuda::DeviceLimits::sm86_a40(), false}}) {
        const cuda::WarpLaunchPlan plan = cuda::plan_warp_launch(&task, 1, limits);
        EXPECT_EQ(plan.warps_per_block, 4);
        EXPECT_EQ(plan.shared_state_reals, state);
        EXPECT_EQ(plan.shared_streamed_reals, rows_in_shared ? streamed : 0u);
        EXPECT_EQ(plan.slice_reals, (resident + plan.shared_streamed_reals + state + 3) / 4 * 4);
        EXPECT_EQ(plan.shared_bytes, 4 * plan.slice_reals * sizeof(float));
        // Shared memory, not threads, bounds the blocks per multiprocessor.
        const auto by_shared = static_cast<int>(limits.shared_bytes_per_multiprocessor / (plan.shared_bytes + 1024));
        EXPECT_LT(by_shared, limits.max_threads_per_multiprocessor / 128);
        EXPECT_EQ(plan.blocks_per_multiprocessor, by_shared);
        EXPECT_GE(plan.warps_per_block * plan.blocks_per_multiprocessor, cuda::min_resident_warps_per_multiprocessor);
    }
    // Medium (K = 10, N = 1000, d = h = 32), float64: the state (2 * 32 000 reals) would leave
    // too few warps, so only the resident buffers are in shared memory.
    cuda::TrajectoryTask<double> medium;
    medium.dims = TrajectoryDims{10, 1000, 32, 32, 0};
    const cuda::WarpLaunchPlan global = cuda::plan_warp_launch(&medium, 1, cuda::DeviceLimits::sm90_h100());
    EXPECT_EQ(global.warps_per_block, 4);
    EXPECT_EQ(global.shared_state_reals, 0u);
    EXPECT_EQ(global.shared_streamed_reals, 0u);
    EXPECT_EQ(global.slice_reals, (TeamWorkspaceLayout(medium.dims).resident_size + 3) / 4 * 4);
    // d = 128 in float64 (W, W^T and G alone are 384 KiB): no plan on any part.
    medium.dims.dim = 128;
    EXPECT_EQ(cuda::plan_warp_launch(&medium, 1, cuda::DeviceLimits::sm90_h100()).warps_per_block, 0);
    // d = 64 in float64: one warp's resident buffers (3 d^2 + 4 K d = 14 848 reals, 116 KiB) fit
    // an H100 block one warp at a time, and no A40 block.
    medium.dims.dim = 64;
    EXPECT_EQ(cuda::plan_warp_launch(&medium, 1, cuda::DeviceLimits::sm90_h100()).warps_per_block, 1);
    EXPECT_EQ(cuda::plan_warp_launch(&medium, 1, cuda::DeviceLimits::sm86_a40()).warps_per_block, 0);
}

TEST(WarpLaunchPlan, RefusesShapesWhoseIndicesOverflowInt) {
    // The team form indexes with int; N d = 2^32 entries would wrap.
    cuda::TrajectoryTask<float> huge;
    huge.dims = TrajectoryDims{2, 1 << 27, 32, 0, 0};
    EXPECT_FALSE(team_indices_fit_int(huge.dims));
    EXPECT_EQ(cuda::plan_warp_launch(&huge, 1, cuda::DeviceLimits::sm90_h100()).warps_per_block, 0);
    huge.dims.samples = (1 << 26) - 1; // N d just under 2^31 (state 2^31 - 32 + 64 entries: still over)
    EXPECT_FALSE(team_indices_fit_int(huge.dims));
    huge.dims.samples = 1 << 20;
    EXPECT_TRUE(team_indices_fit_int(huge.dims));
}

TEST(WarpLaunchPlan, CollapseCudaKernelSelectsIt) {
    ::setenv("COLLAPSE_CUDA_KERNEL", "warp", 1);
    EXPECT_EQ(cuda::kernel_choice_from_environment(), cuda::KernelChoice::warp);
    ::setenv("COLLAPSE_CUDA_KERNEL", "fused", 1); // the fused kernel is called "block"
    try {
        cuda::kernel_choice_from_environment();
        ADD_FAILURE() << "COLLAPSE_CUDA_KERNEL=fused was accepted";
    } catch (const BackendError& error) {
        EXPECT_EQ(std::string(error.what()), "COLLAPSE_CUDA_KERNEL must be auto, thread, team, warp or block, not 'fused'");
    }
    ::unsetenv("COLLAPSE_CUDA_KERNEL");
    EXPECT_EQ(cuda::kernel_choice_from_environment(), cuda::KernelChoice::automatic);
}

TEST(WarpLaunchPlan, AutoPrefersTheWarpKernelForSmallStates) {
    EXPECT_TRUE(cuda::prefer_warp_kernel(TrajectoryDims{4, 200, 8, 8, 0}));     // small: N d = 1600
    EXPECT_TRUE(cuda::prefer_warp_kernel(TrajectoryDims{4, 128, 32, 0, 0}));    // N d = 4096
    EXPECT_FALSE(cuda::prefer_warp_kernel(TrajectoryDims{4, 129, 32, 0, 0}));
    EXPECT_FALSE(cuda::prefer_warp_kernel(TrajectoryDims{10, 1000, 32, 32, 0})); // medium
}

} // namespace
} // namespace collapse::testing
