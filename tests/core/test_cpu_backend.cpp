// Batching, threading and precision invariants of the CPU backend.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <numeric>
#include <set>

#include "collapse/backend/backend.hpp"
#include "reference.hpp"

namespace collapse {
namespace {

SweepSpec mixed_spec(Precision precision, IntegratorMethod method) {
    SweepSpec spec;
    spec.shape.classes = 3;
    spec.shape.samples_per_class = 8;
    spec.shape.dim = 4;
    spec.integrator.max_steps = 400;
    spec.integrator.precision = precision;
    spec.integrator.method = method;
    spec.output.record_points = 32;
    spec.output.save_samples = true;
    spec.output.save_initial = true;
    spec.master_seed = 2024;
    spec.seeds = 3;
    spec.axes = {Axis{"frustration", Axis::Type::real, {0.0, 0.2, 0.5}, false},
                 Axis{"head_dim", Axis::Type::integer, {0, 3}, false},
                 Axis{"lr", Axis::Type::real, {0.3, 2.5}, false}, // 2.5 diverges the plain model
                 Axis{"stop_gradient", Axis::Type::boolean, {0, 1}, false}};
    return spec;
}

// Runs the whole grid in batches of `batch_size` and returns outputs keyed by flat index.
std::map<std::int64_t, BatchOutput> run_grid(const SweepSpec& spec, int threads, std::int64_t batch_size) {
    const Grid grid(spec);
    auto backend = make_cpu_backend(threads);
    std::vector<std::int64_t> order(static_cast<std::size_t>(grid.size()));
    std::iota(order.begin(), order.end(), 0);
    std::reverse(order.begin(), order.end()); // batch composition differs from the reference
    std::map<std::int64_t, BatchOutput> by_index;
    for (std::size_t start = 0; start < order.size(); start += static_cast<std::size_t>(batch_size)) {
        const std::size_t count = std::min(order.size() - start, static_cast<std::size_t>(batch_size));
        BatchOutput batch;
        backend->run_batch(spec, grid, std::span(order).subspan(start, count), batch);
        for (std::size_t b = 0; b < count; ++b) {
            // Split back into single-trajectory outputs for comparison.
            BatchOutput single;
            const std::int64_t flat = batch.flat_index[b];
            const auto slice = [&](const std::vector<double>& all) {
                const std::size_t per = all.size() / count;
                return std::vector<double>(all.begin() + static_cast<long>(b * per), all.begin() + static_cast<long>((b + 1) * per));
            };
            single.flat_index = {flat};
            single.summary = {batch.summary[b]};
            single.label_distance_trace = slice(batch.label_distance_trace);
            single.accuracy_trace = slice(batch.accuracy_trace);
            single.loss_trace = slice(batch.loss_trace);
            single.final_label_embeddings = slice(batch.final_label_embeddings);
            single.final_head = slice(batch.final_head);
            single.final_sample_embeddings = slice(batch.final_sample_embeddings);
            single.initial_head_B = slice(batch.initial_head_B);
            by_index[flat] = single;
        }
    }
    return by_index;
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

// Field by field: the struct has padding bytes that memcmp would read.
void expect_same_summary(const TrajectorySummary& a, const TrajectorySummary& b) {
    const auto same = [](double x, double y) { return std::memcmp(&x, &y, sizeof(double)) == 0; };
    EXPECT_EQ(a.status, b.status);
    EXPECT_EQ(a.collapse_step, b.collapse_step);
    EXPECT_EQ(a.final_step, b.final_step);
    EXPECT_EQ(a.peak_accuracy_step, b.peak_accuracy_step);
    for (auto field : {&TrajectorySummary::collapse_time, &TrajectorySummary::peak_accuracy,
                       &TrajectorySummary::final_accuracy, &TrajectorySummary::final_loss,
                       &TrajectorySummary::final_label_distance, &TrajectorySummary::final_projected_distance,
                       &TrajectorySummary::slow_rate, &TrajectorySummary::initial_label_distance,
                       &TrajectorySummary::reference_distance})
        EXPECT_TRUE(same(a.*field, b.*field));
}

void expect_identical(const std::map<std::int64_t, BatchOutput>& a, const std::map<std::int64_t, BatchOutput>& b) {
    ASSERT_EQ(a.size(), b.size());
    for (const auto& [flat, left] : a) {
        const BatchOutput& right = b.at(flat);
        SCOPED_TRACE("flat index " + std::to_string(flat));
        expect_same_summary(left.summary[0], right.summary[0]);
        EXPECT_TRUE(same_bits(left.label_distance_trace, right.label_distance_trace));
        EXPECT_TRUE(same_bits(left.accuracy_trace, right.accuracy_trace));
        EXPECT_TRUE(same_bits(left.loss_trace, right.loss_trace));
        EXPECT_TRUE(same_bits(left.final_label_embeddings, right.final_label_embeddings));
        EXPECT_TRUE(same_bits(left.final_head, right.final_head));
        EXPECT_TRUE(same_bits(left.final_sample_embeddings, right.final_sample_embeddings));
        EXPECT_TRUE(same_bits(left.initial_head_B, right.initial_head_B));
    }
}

class CpuBackendDeterminism : public ::testing::TestWithParam<std::tuple<Precision, IntegratorMethod>> {};

TEST_P(CpuBackendDeterminism, BitIdenticalAcrossThreadsAndBatchSizes) {
    const auto [precision, method] = GetParam();
    const SweepSpec spec = mixed_spec(precision, method);
    const auto reference = run_grid(spec, 1, Grid(spec).size());
    for (int threads : {1, 2, 4})
        for (std::int64_t batch_size : {1, 7, 64}) {
            SCOPED_TRACE("threads " + std::to_string(threads) + " batch " + std::to_string(batch_size));
            expect_identical(reference, run_grid(spec, threads, batch_size));
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
    spec.axes[2].values = {0.3, -1.0};
    const Grid grid(spec);
    auto backend = make_cpu_backend(1);
    BatchOutput batch;
    std::vector<std::int64_t> all(static_cast<std::size_t>(grid.size()));
    std::iota(all.begin(), all.end(), 0);
    EXPECT_THROW(backend->run_batch(spec, grid, all, batch), std::invalid_argument);
}

} // namespace
} // namespace collapse
