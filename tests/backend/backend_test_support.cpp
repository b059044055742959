#include "backend_test_support.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <span>

#include "collapse/sweep/grid.hpp"
#include "spec_builder.hpp"

namespace collapse::testing {
namespace {

// The per-trajectory arrays of BatchOutput, named for failure messages.
std::vector<std::pair<const char*, std::vector<double> BatchOutput::*>> floating_arrays() {
    return {{"label_distance_trace", &BatchOutput::label_distance_trace},
            {"projected_distance_trace", &BatchOutput::projected_distance_trace},
            {"accuracy_trace", &BatchOutput::accuracy_trace},
            {"loss_trace", &BatchOutput::loss_trace},
            {"final_label_embeddings", &BatchOutput::final_label_embeddings},
            {"final_head", &BatchOutput::final_head},
            {"final_sample_embeddings", &BatchOutput::final_sample_embeddings},
            {"initial_head_A", &BatchOutput::initial_head_A},
            {"initial_head_B", &BatchOutput::initial_head_B}};
}

std::vector<std::pair<const char*, double TrajectorySummary::*>> floating_fields() {
    return {{"collapse_time", &TrajectorySummary::collapse_time},
            {"peak_accuracy", &TrajectorySummary::peak_accuracy},
            {"final_accuracy", &TrajectorySummary::final_accuracy},
            {"final_loss", &TrajectorySummary::final_loss},
            {"final_label_distance", &TrajectorySummary::final_label_distance},
            {"final_projected_distance", &TrajectorySummary::final_projected_distance},
            {"slow_rate", &TrajectorySummary::slow_rate},
            {"initial_label_distance", &TrajectorySummary::initial_label_distance},
            {"reference_distance", &TrajectorySummary::reference_distance}};
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof(double)) == 0; }

// |a - b| <= relative * scale, NaN only against NaN.
bool close(double a, double b, double relative, double scale) {
    if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
    if (a == b) return true; // also equal infinities
    return std::abs(a - b) <= relative * scale;
}

void expect_same_steps(const TrajectorySummary& a, const TrajectorySummary& b) {
    EXPECT_EQ(a.status, b.status);
    EXPECT_EQ(a.collapse_step, b.collapse_step);
    EXPECT_EQ(a.final_step, b.final_step);
    EXPECT_EQ(a.peak_accuracy_step, b.peak_accuracy_step);
}

} // namespace

SweepSpec mixed_spec(Precision precision, IntegratorMethod method) {
    SweepSpec spec = test_spec({.classes = 3, .samples_per_class = 8, .dim = 4, .method = method, .max_steps = 400,
                                .precision = precision, .record_points = 32, .save_samples = true, .save_initial = true,
                                .master_seed = 2024, .seeds = 3,
                                .axes = {frustration_axis({0.0, 0.2, 0.5}), head_dim_axis({0, 3}), stop_gradient_axis(),
                                         lr_axis({0.3, 2.5})}}); // 2.5 diverges
    spec.collapse.threshold = 0.3; // reached within 400 steps at f = 0.5
    return spec;
}

SweepSpec parity_spec(Precision precision, IntegratorMethod method) {
    SweepSpec spec = mixed_spec(precision, method);
    spec.integrator.max_steps = 1200;
    spec.axes[3].values = {0.06, 2.5};
    return spec;
}

SweepSpec at_fused_kernel_dim(SweepSpec spec) {
    spec.shape.dim = 8;
    spec.master_seed = 2025;
    return spec;
}

SweepSpec spec_for_kernel(const SweepSpec& spec, const char* kernel) {
    return std::string(kernel).starts_with("block") ? at_fused_kernel_dim(spec) : spec;
}

SweepSpec tensor_tile_spec(Precision precision, int dim, std::int64_t max_steps) {
    SweepSpec spec = parity_spec(precision, IntegratorMethod::gd);
    spec.shape.dim = dim;
    spec.integrator.max_steps = max_steps;
    spec.seeds = 1;
    spec.axes[0].values = {0.2};
    spec.axes[1].values = {3};
    spec.collapse.metric = CollapseMetric::projected;
    spec.collapse.stop_on_collapse = false;
    return spec;
}

SweepSpec teacher_student_spec(Precision precision) {
    SweepSpec spec = mixed_spec(precision, IntegratorMethod::gd);
    spec.shape.kind = ModelKind::teacher_student;
    spec.shape.input_dim = 6;
    spec.axes[3].values = {0.3, 4.0};
    return spec;
}

std::map<std::int64_t, BatchOutput> run_grid(Backend& backend, const SweepSpec& spec, std::int64_t batch_size) {
    const Grid grid(spec);
    std::vector<std::int64_t> order(static_cast<std::size_t>(grid.size()));
    std::iota(order.rbegin(), order.rend(), 0); // batch composition differs from flat order
    std::map<std::int64_t, BatchOutput> by_index;
    for (std::size_t start = 0; start < order.size(); start += static_cast<std::size_t>(batch_size)) {
        const std::size_t count = std::min(order.size() - start, static_cast<std::size_t>(batch_size));
        BatchOutput batch;
        backend.run_batch(spec, grid, std::span<const std::int64_t>(order).subspan(start, count), batch);
        for (std::size_t b = 0; b < count; ++b) {
            BatchOutput single;
            single.flat_index = {batch.flat_index[b]};
            single.summary = {batch.summary[b]};
            single.trace_length = batch.trace_length;
            for (const auto& [name, array] : floating_arrays()) {
                const std::vector<double>& all = batch.*array;
                const std::size_t per = all.size() / count;
                single.*array = std::vector<double>(all.begin() + static_cast<long>(b * per),
                                                    all.begin() + static_cast<long>((b + 1) * per));
            }
            by_index[batch.flat_index[b]] = single;
        }
    }
    return by_index;
}

void expect_bit_identical(const std::map<std::int64_t, BatchOutput>& expected,
                          const std::map<std::int64_t, BatchOutput>& actual) {
    ASSERT_EQ(expected.size(), actual.size());
    for (const auto& [flat, left] : expected) {
        SCOPED_TRACE("flat index " + std::to_string(flat));
        const BatchOutput& right = actual.at(flat);
        expect_same_steps(left.summary[0], right.summary[0]);
        for (const auto& [name, field] : floating_fields())
            EXPECT_TRUE(same_bits(left.summary[0].*field, right.summary[0].*field)) << name;
        for (const auto& [name, array] : floating_arrays()) {
            const std::vector<double>&a = left.*array, &b = right.*array;
            ASSERT_EQ(a.size(), b.size()) << name;
            EXPECT_TRUE(std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0) << name;
        }
    }
}

void expect_close_results(const std::map<std::int64_t, BatchOutput>& expected,
                          const std::map<std::int64_t, BatchOutput>& actual, double relative) {
    ASSERT_EQ(expected.size(), actual.size());
    for (const auto& [flat, left] : expected) {
        SCOPED_TRACE("flat index " + std::to_string(flat));
        const BatchOutput& right = actual.at(flat);
        const TrajectorySummary &a = left.summary[0], &b = right.summary[0];
        expect_same_steps(a, b);
        if (a.status == TrajectoryStatus::diverged) continue; // its numbers are overflow debris
        // Scaled by the value itself, floored for rates that are ~0 on stable runs.
        for (const auto& [name, field] : floating_fields())
            EXPECT_TRUE(close(b.*field, a.*field, relative, std::max(std::abs(a.*field), 1e-6)))
                << name << ": " << a.*field << " vs " << b.*field;
        for (const auto& [name, array] : floating_arrays()) {
            const std::vector<double>&x = left.*array, &y = right.*array;
            ASSERT_EQ(x.size(), y.size()) << name;
            double scale = 0;
            for (double value : x)
                if (std::isfinite(value)) scale = std::max(scale, std::abs(value));
            for (std::size_t e = 0; e < x.size(); ++e)
                EXPECT_TRUE(close(y[e], x[e], relative, scale)) << name << "[" << e << "]: " << x[e] << " vs " << y[e];
        }
    }
}

void expect_same_statuses(const std::map<std::int64_t, BatchOutput>& expected,
                          const std::map<std::int64_t, BatchOutput>& actual, double relative_collapse_step) {
    ASSERT_EQ(expected.size(), actual.size());
    for (const auto& [flat, left] : expected) {
        SCOPED_TRACE("flat index " + std::to_string(flat));
        const TrajectorySummary &a = left.summary[0], &b = actual.at(flat).summary[0];
        EXPECT_EQ(a.status, b.status);
        if (a.status == TrajectoryStatus::collapsed && b.status == TrajectoryStatus::collapsed) {
            const double allowed = std::max(1.0, relative_collapse_step * static_cast<double>(a.collapse_step));
            EXPECT_LE(std::abs(static_cast<double>(a.collapse_step - b.collapse_step)), allowed)
                << a.collapse_step << " vs " << b.collapse_step;
        }
    }
}

std::unique_ptr<Backend> cuda_backend_with_kernel(const char* kernel, std::string& skip_reason) {
    const bool tensor = std::string(kernel) == "block_tc";
    ::setenv("COLLAPSE_CUDA_KERNEL", tensor ? "block" : kernel, 1);
    ::setenv("COLLAPSE_CUDA_TENSOR_CORES", tensor ? "on" : "off", 1);
    std::unique_ptr<Backend> backend;
    try {
        backend = make_cuda_backend();
    } catch (const BackendError& error) {
        skip_reason = std::string("no CUDA device: ") + error.what();
    }
    ::unsetenv("COLLAPSE_CUDA_KERNEL");
    ::unsetenv("COLLAPSE_CUDA_TENSOR_CORES");
    return backend;
}

void CudaBackendTest::SetUp() {
    try {
        cuda_ = make_cuda_backend();
    } catch (const BackendError& error) {
        GTEST_SKIP() << "no CUDA device: " << error.what();
    }
}

} // namespace collapse::testing
