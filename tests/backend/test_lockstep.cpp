// CUDA builds only, no device needed: the lockstep path for large states
// (kernels/lockstep/, docs/cuda-backend.md "Large states: lockstep cuBLAS
// path") run on the CPU, with thrust::host for the elementwise passes and
// the plain-loop CpuBatchedGemm for the products, between the CUDA backend's
// own packing and unpacking. Against the CPU backend: float64 within 1e-9,
// float32 statuses; zero-padding of the head exact; results independent of
// the batch and the lanes. Also the size rule. What the step is made of is
// checked by test_lockstep_step.cpp; what this cannot check is the cuBLASLt
// call and the graph (test_lockstep_gpu.cpp does, on a GPU).
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "lockstep_test_support.hpp"
#include "device_limits.hpp"
#include "lockstep/lockstep_runner.hpp"
#include "collapse/sweep/grid.hpp"

namespace collapse::testing {
namespace {

TEST(LockstepHost, Float64MatchesTheCpuBackend) {
    const SweepSpec spec = parity_spec(Precision::float64, IntegratorMethod::gd);
    const auto cpu = make_cpu_backend(1);
    HostLockstepBackend lockstep;
    const auto expected = run_grid(*cpu, spec, 64);
    EXPECT_EQ(statuses_of(expected).size(), 3u) << "the grid should have stable, collapsed and diverged trajectories";
    // One batch mixes h = 0 and 3, both stop-gradient settings, f and lr.
    expect_close_results(expected, run_grid(lockstep, spec, 144), 1e-9);
}

TEST(LockstepHost, Float32HasTheCpuStatuses) {
    const SweepSpec spec = parity_spec(Precision::float32, IntegratorMethod::gd);
    const auto cpu = make_cpu_backend(1);
    HostLockstepBackend lockstep;
    expect_same_statuses(run_grid(*cpu, spec, 64), run_grid(lockstep, spec, 64), 0.01);
}

// The projected metric without early stop: trajectories keep running past
// their collapse, and the projected distance drives the event.
TEST(LockstepHost, ProjectedMetricWithoutEarlyStopMatchesTheCpuBackend) {
    SweepSpec spec = parity_spec(Precision::float64, IntegratorMethod::gd);
    spec.collapse.metric = CollapseMetric::projected;
    spec.collapse.stop_on_collapse = false;
    spec.integrator.max_steps = 600;
    const auto cpu = make_cpu_backend(1);
    HostLockstepBackend lockstep;
    expect_close_results(run_grid(*cpu, spec, 64), run_grid(lockstep, spec, 64), 1e-9);
}

// h = 2 in a batch padded to h_max = 8 gives the bits it gives alone.
// A batch with a head runs at the grid's widest head, whichever trajectories
// it holds, so the head products keep one shape (and on the device one pinned
// cuBLASLt algorithm); a batch of plain trajectories skips them. The padding
// is exact: a trajectory gives the same bits at its own width.
TEST(LockstepHost, ABatchWithAHeadRunsAtTheGridsWidestHeadAndPaddingIsExact) {
    SweepSpec spec = mixed_spec(Precision::float64, IntegratorMethod::gd);
    spec.axes[1].values = {0, 2, 8};
    const Grid grid(spec);
    std::vector<std::int64_t> narrow_head, plain;
    for (std::int64_t flat = 0; flat < grid.size(); ++flat) {
        const int head = grid.params(flat).head_dim;
        if (head == 2) narrow_head.push_back(flat);
        if (head == 0) plain.push_back(flat);
    }
    ASSERT_FALSE(narrow_head.empty());
    ASSERT_FALSE(plain.empty());
    const auto run_batch = [&](std::span<const std::int64_t> flat, int grid_widest_head, int expected_width) {
        cuda::HostBatch<double> host(cuda::HostMemory::pageable);
        BatchOutput out;
        cuda::pack_batch(spec, grid, flat, host, out);
        EXPECT_EQ(host.grid_widest_head, 8);
        host.grid_widest_head = grid_widest_head;
        EXPECT_EQ(lockstep::make_lockstep_problem(host, IntegratorMethod::gd).shape.head, expected_width);
        lockstep::run_lockstep_on_host(host, IntegratorMethod::gd, out);
        return std::map<std::int64_t, BatchOutput>{{0, std::move(out)}};
    };
    const auto padded = run_batch(narrow_head, 8, 8);
    const auto own_width = run_batch(narrow_head, 0, 2);
    expect_bit_identical(own_width, padded);
    run_batch(plain, 8, 0);
    // The whole grid in one batch and one trajectory per batch: the same bits.
    HostLockstepBackend lockstep;
    expect_bit_identical(run_grid(lockstep, spec, 1), run_grid(lockstep, spec, 1000));
}

// Batch size, composition and the polling interval change no bit.
TEST(LockstepHost, ResultsDependOnNeitherBatchNorPolling) {
    for (Precision precision : {Precision::float64, Precision::float32}) {
        const SweepSpec spec = mixed_spec(precision, IntegratorMethod::gd);
        HostLockstepBackend lockstep, every_step(1), never(0);
        const auto expected = run_grid(lockstep, spec, 64);
        expect_bit_identical(expected, run_grid(lockstep, spec, 7));
        expect_bit_identical(expected, run_grid(every_step, spec, 13));
        expect_bit_identical(expected, run_grid(never, spec, 64));
    }
}

// Lanes: the 72 trajectories of one batch on L lanes, freed lanes refilled
// from the queue at each poll, give the bits of one lane per trajectory.
// The grid's trajectories stop at very different steps (lr 2.5 diverges
// within a few steps, f = 0.5 collapses mid-run, others run to max_steps),
// so lanes are refilled while others still run.
TEST(LockstepHost, LanesAreRefilledWithoutChangingABit) {
    for (Precision precision : {Precision::float64, Precision::float32}) {
        const SweepSpec spec = mixed_spec(precision, IntegratorMethod::gd);
        const std::int64_t B = Grid(spec).size();
        HostLockstepBackend one_lane_each;
        const auto expected = run_grid(one_lane_each, spec, B);
        ASSERT_EQ(static_cast<std::int64_t>(expected.size()), B);
        EXPECT_EQ(one_lane_each.longest_loop, spec.integrator.max_steps);
        std::set<std::int64_t> final_steps;
        for (const auto& [flat, output] : expected) final_steps.insert(output.summary[0].final_step);
        EXPECT_EQ(statuses_of(expected).size(), 3u);
        EXPECT_GE(final_steps.size(), 5u) << "trajectories should stop at many different steps";
        EXPECT_LT(*final_steps.begin(), 20) << "some trajectory should diverge early";
        EXPECT_EQ(*final_steps.rbegin(), spec.integrator.max_steps);
        for (std::int64_t lanes : {std::int64_t{1}, std::int64_t{3}, std::int64_t{7}, B}) {
            for (int poll : {1, 5}) {
                SCOPED_TRACE("lanes " + std::to_string(lanes) + ", poll every " + std::to_string(poll));
                HostLockstepBackend lockstep(poll, lanes);
                expect_bit_identical(expected, run_grid(lockstep, spec, B));
                // With fewer lanes than trajectories, refilled lanes run past max_steps of the loop.
                if (lanes < B) {
                    EXPECT_GT(lockstep.longest_loop, spec.integrator.max_steps);
                }
            }
        }
        // Lanes with batches smaller than the grid, and a batch smaller than the lanes asked for.
        HostLockstepBackend three_lanes(5, 3), many_lanes(1, 100);
        expect_bit_identical(expected, run_grid(three_lanes, spec, 13));
        expect_bit_identical(expected, run_grid(many_lanes, spec, 7));
    }
}

// On fewer lanes than trajectories, still the CPU backend's results.
TEST(LockstepHost, LanesMatchTheCpuBackend) {
    const auto cpu = make_cpu_backend(1);
    const SweepSpec spec = parity_spec(Precision::float64, IntegratorMethod::gd);
    const auto expected = run_grid(*cpu, spec, 64);
    HostLockstepBackend lanes(5, 3);
    expect_close_results(expected, run_grid(lanes, spec, 144), 1e-9);
    const SweepSpec single = parity_spec(Precision::float32, IntegratorMethod::gd);
    HostLockstepBackend lane(1, 1);
    expect_same_statuses(run_grid(*cpu, single, 64), run_grid(lane, single, 144), 0.01);
}

TEST(LockstepHost, RefusesWhatItDoesNotRun) {
    const SweepSpec spec = teacher_student_spec(Precision::float64);
    const Grid grid(spec);
    const std::vector<std::int64_t> flat = {0, 1};
    cuda::HostBatch<double> host(cuda::HostMemory::pageable);
    BatchOutput out;
    cuda::pack_batch(spec, grid, flat, host, out);
    EXPECT_FALSE(lockstep::lockstep_supports(host, IntegratorMethod::gd));
    EXPECT_THROW(lockstep::run_lockstep_on_host(host, IntegratorMethod::gd, out), std::invalid_argument);
}

// Which path a batch takes depends on the grid, not on the batch: with heads
// {0, 1000} at N = 1000, d = 32, a plain trajectory's state fits an H100
// block (129 KB in float32) and an h = 1000 one does not (385 KB), so a rule
// reading the batch's widest head sent plain-only batches to the kernels and
// mixed ones to the lockstep path: other bits for the same trajectory.
TEST(LockstepSelection, ThePathDependsOnTheGridNotOnWhatSharesTheBatch) {
    SweepSpec spec = mixed_spec(Precision::float32, IntegratorMethod::gd);
    spec.shape.classes = 10;
    spec.shape.samples_per_class = 100;
    spec.shape.dim = 32;
    spec.seeds = 1;
    spec.axes[1].values = {0, 1000};
    const Grid grid(spec);
    std::vector<std::int64_t> plain, mixed;
    for (std::int64_t flat = 0; flat < grid.size(); ++flat) {
        if (grid.params(flat).head_dim == 0 && plain.size() < 2) plain.push_back(flat);
        if (mixed.size() < 2 && (mixed.empty() || grid.params(flat).head_dim != grid.params(mixed[0]).head_dim))
            mixed.push_back(flat);
    }
    ASSERT_EQ(plain.size(), 2u);
    ASSERT_EQ(mixed.size(), 2u);
    const cuda::DeviceLimits h100 = cuda::DeviceLimits::sm90_h100();
    const auto takes_lockstep = [&](const std::vector<std::int64_t>& flat) {
        cuda::HostBatch<float> host(cuda::HostMemory::pageable);
        BatchOutput out;
        cuda::pack_batch(spec, grid, flat, host, out);
        return cuda::use_lockstep(host, IntegratorMethod::gd, h100, cuda::LockstepChoice::automatic);
    };
    EXPECT_TRUE(takes_lockstep(mixed));
    EXPECT_TRUE(takes_lockstep(plain));
}

TEST(LockstepSelection, LargeStatesTakeTheLockstepPath) {
    const std::size_t h100_block = 227 * 1024;
    const TrajectoryDims large{10, 10000, 64, 64, 0};
    EXPECT_TRUE(lockstep::prefer_lockstep(large, Precision::float32, IntegratorMethod::gd, h100_block));
    // Medium (K = 10, N = 1000, d = h = 32): 134 KiB in float32 fits, 268 KiB in float64 does not.
    const TrajectoryDims medium{10, 1000, 32, 32, 0};
    EXPECT_FALSE(lockstep::prefer_lockstep(medium, Precision::float32, IntegratorMethod::gd, h100_block));
    EXPECT_TRUE(lockstep::prefer_lockstep(medium, Precision::float64, IntegratorMethod::gd, h100_block));
    EXPECT_FALSE(lockstep::prefer_lockstep(medium, Precision::float64, IntegratorMethod::gd, h100_block, 4.0));
    // Not supported there: rk4 and teacher_student keep the kernels.
    EXPECT_FALSE(lockstep::prefer_lockstep(large, Precision::float32, IntegratorMethod::rk4, h100_block));
    // Memory: about five N x d blocks (X, W x_i, R1, dL/dx, the pool) per trajectory.
    const double blocks = static_cast<double>(lockstep::lockstep_bytes_per_trajectory(large, 128, sizeof(float))) /
                          (10000.0 * 64 * sizeof(float));
    EXPECT_GT(blocks, 5.0);
    EXPECT_LT(blocks, 5.2);
    const TrajectoryDims teacher{10, 10000, 64, 64, 100};
    EXPECT_FALSE(lockstep::prefer_lockstep(teacher, Precision::float32, IntegratorMethod::gd, h100_block));
}

} // namespace
} // namespace collapse::testing
