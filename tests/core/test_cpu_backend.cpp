// Batching, threading and precision invariants of the CPU backend.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <numeric>
#include <set>

#include "backend_test_support.hpp"
#include "collapse/backend/backend.hpp"
#include "reference.hpp"

namespace collapse {
namespace {

// The grid and the batch driver are those of the backend tests
// (tests/backend/backend_test_support.hpp): f x h x sg x lr (2.5 diverges) x 3 seeds.
using testing::mixed_spec;

std::map<std::int64_t, BatchOutput> run_grid(const SweepSpec& spec, int threads, std::int64_t batch_size) {
    const auto backend = make_cpu_backend(threads);
    return testing::run_grid(*backend, spec, batch_size);
}

class CpuBackendDeterminism : public ::testing::TestWithParam<std::tuple<Precision, IntegratorMethod>> {};

TEST_P(CpuBackendDeterminism, BitIdenticalAcrossThreadsAndBatchSizes) {
    const auto [precision, method] = GetParam();
    const SweepSpec spec = mixed_spec(precision, method);
    const auto reference = run_grid(spec, 1, Grid(spec).size());
    for (int threads : {1, 2, 4})
        for (std::int64_t batch_size : {1, 7, 64}) {
            SCOPED_TRACE("threads " + std::to_string(threads) + " batch " + std::to_string(batch_size));
            testing::expect_bit_identical(reference, run_grid(spec, threads, batch_size));
        }
    // The grid is a real mix: every status appears.
    std::set<TrajectoryStatus> statuses;
    for (const auto& [flat, output] : reference) statuses.insert(output.summary[0].status);
    EXPECT_TRUE(statuses.count(TrajectoryStatus::diverged));
    EXPECT_TRUE(statuses.count(TrajectoryStatus::stable) || statuses.count(TrajectoryStatus::collapsed));
}

INSTANTIATE_TEST_SUITE_P(PrecisionAndMethod, CpuBackendDeterminism,
                         ::testing::Combine(::testing::Values(Precision::float32, Precision::float64),
                                            ::testing::Values(IntegratorMethod::gd, IntegratorMethod::rk4)));

TEST(CpuBackend, BatchEntryEqualsSingleTrajectoryRun) {
    const SweepSpec spec = mixed_spec(Precision::float64, IntegratorMethod::gd);
    const Grid grid(spec);
    auto backend = make_cpu_backend(2);
    const std::vector<std::int64_t> indices{5, 17, 40};
    BatchOutput batch;
    backend->run_batch(spec, grid, indices, batch);
    for (std::size_t b = 0; b < indices.size(); ++b) {
        testing::RunOptions options;
        options.max_steps = spec.integrator.max_steps;
        options.record_points = spec.output.record_points;
        options.master_seed = spec.master_seed;
        options.threshold = spec.collapse.threshold;
        TrajectoryParams params = grid.params(indices[b]);
        // run_single draws the head at this trajectory's own width; the grid
        // draws at h_max. Nested draws make the two the same.
        const testing::SingleRun single = testing::run_single(spec.shape, params, options);
        EXPECT_EQ(single.summary.final_step, batch.summary[b].final_step);
        EXPECT_EQ(single.summary.final_loss, batch.summary[b].final_loss);
        const std::size_t T = static_cast<std::size_t>(batch.trace_length);
        for (std::size_t j = 0; j < T; ++j) {
            const double expected = single.label_distance[j], actual = batch.label_distance_trace[b * T + j];
            if (std::isnan(expected)) EXPECT_TRUE(std::isnan(actual));
            else EXPECT_EQ(expected, actual);
        }
    }
}

TEST(CpuBackend, RejectsBadGridValuesBeforeRunning) {
    SweepSpec spec = mixed_spec(Precision::float64, IntegratorMethod::gd);
    spec.axes[3].values = {0.3, -1.0}; // lr
    const Grid grid(spec);
    auto backend = make_cpu_backend(1);
    BatchOutput batch;
    std::vector<std::int64_t> all(static_cast<std::size_t>(grid.size()));
    std::iota(all.begin(), all.end(), 0);
    EXPECT_THROW(backend->run_batch(spec, grid, all, batch), std::invalid_argument);
}

} // namespace
} // namespace collapse
