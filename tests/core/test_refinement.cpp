// Phase-boundary refinement: the bisection arithmetic, a planted boundary
// whose location is known exactly (gd divergence at lr_c = 2/lambda_max of the
// plain model), and the cost against a dense grid of the same resolution.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "collapse/backend/backend.hpp"
#include "collapse/refine/bisection.hpp"
#include "collapse/refine/boundary_refinement.hpp"
#include "reference.hpp"

namespace collapse::testing {
namespace {

using refine::AxisGeometry;
using refine::AxisScale;

TEST(Bisection, FirstCrossingMidpointsAndStops) {
    EXPECT_EQ(refine::first_crossing({0.0, 0.2, 0.7, 1.0, 0.1}, 0.5), std::optional<std::size_t>(1));
    EXPECT_EQ(refine::first_crossing({1.0, 0.9, NAN, 0.1}, 0.5), std::nullopt); // NaN breaks a pair
    EXPECT_EQ(refine::first_crossing({0.2, 0.3}, 0.5), std::nullopt);
    EXPECT_DOUBLE_EQ(refine::bisection_midpoint(0.1, 0.4, {AxisScale::linear, 1}), 0.25);
    EXPECT_DOUBLE_EQ(refine::bisection_midpoint(0.01, 1.0, {AxisScale::logarithmic, 1}), 0.1);
    const AxisGeometry frustration{AxisScale::frustrated_count, 40};
    EXPECT_DOUBLE_EQ(refine::bisection_midpoint(0.0, 0.5, frustration), 10.0 / 40); // counts 0 and 20
    EXPECT_TRUE(refine::bracket_done(0.25, 0.275, 1e-6, frustration));               // counts 10 and 11
    EXPECT_DOUBLE_EQ(refine::bracket_estimate(0.25, 0.275, frustration), 10.5 / 40); // the jump itself
    EXPECT_FALSE(refine::bracket_done(0.25, 0.3, 1e-6, frustration));
    EXPECT_DOUBLE_EQ(refine::seed_fraction({1, 0, -1, 1}), 2.0 / 3);
}

TEST(Bisection, BootstrapSpreadFollowsSeedThresholds) {
    // Seeds switch at 0.3, 0.4, 0.5, 0.6 along the axis: the crossing of their mean moves with the resample.
    std::vector<refine::EvaluatedPoint> points;
    for (double value = 0.0; value <= 1.0001; value += 0.05) {
        refine::EvaluatedPoint point{value, {}};
        for (double threshold : {0.3, 0.4, 0.5, 0.6}) point.outcomes.push_back(value > threshold ? 1 : 0);
        points.push_back(point);
    }
    const AxisGeometry linear{AxisScale::linear, 1};
    const double spread = refine::bootstrap_standard_error(points, true, 0.5, linear, 2000, 1);
    EXPECT_GT(spread, 0.03);
    EXPECT_LT(spread, 0.15);
    for (auto& point : points) point.outcomes.resize(1); // one seed: no seed-to-seed spread
    EXPECT_EQ(refine::bootstrap_standard_error(points, true, 0.5, linear, 200, 1), 0.0);
}

struct Planted {
    SweepSpec spec;
    double critical_lr = 0;
};

// One seed, one frustration, plain model: the diverged fraction jumps from 0 to 1 at 2/lambda_max.
Planted planted_divergence(bool log_spaced) {
    Planted planted;
    SweepSpec& spec = planted.spec;
    spec.shape.classes = 4;
    spec.shape.samples_per_class = 8;
    spec.shape.dim = 3;
    spec.integrator.max_steps = 60000; // divergence at lr_c (1 + e) takes ~ ln(1e12) / (4 e) steps
    spec.collapse.stop_on_collapse = false;
    spec.output.record_points = 8;
    spec.master_seed = 5;
    spec.seeds = 1;
    const double frustration = 0.25;
    const SeedDraws draws = draw_seed(spec.shape, 0, spec.master_seed, 0);
    const Eigen eigen =
        symmetric_eigen(scaled_laplacian(pair_list(draws, frustration), spec.shape.samples(), spec.shape.classes));
    planted.critical_lr = 2.0 / eigen.values.back();
    const double lr_c = planted.critical_lr;
    spec.axes = {Axis{"frustration", Axis::Type::real, {frustration}, false},
                 Axis{"head_dim", Axis::Type::integer, {0}, false},
                 log_spaced ? Axis{"lr", Axis::Type::real, {0.3 * lr_c, 0.6 * lr_c, 1.2 * lr_c}, true} // ratio 2
                            : Axis{"lr", Axis::Type::real, {0.7 * lr_c, 1.3 * lr_c}, false}};
    return planted;
}

std::vector<std::int8_t> run_statuses(const SweepSpec& spec) {
    const Grid grid(spec);
    std::vector<std::int64_t> flat(static_cast<std::size_t>(grid.size()));
    std::iota(flat.begin(), flat.end(), 0);
    BatchOutput out;
    make_cpu_backend(2)->run_batch(spec, grid, flat, out);
    std::vector<std::int8_t> status(flat.size());
    for (std::size_t b = 0; b < out.size(); ++b)
        status[static_cast<std::size_t>(out.flat_index[b])] = static_cast<std::int8_t>(out.summary[b].status);
    return status;
}

TEST(Refinement, FindsPlantedDivergenceBoundary) {
    for (bool log_spaced : {false, true}) {
        SCOPED_TRACE(log_spaced ? "log-spaced lr" : "linear lr");
        const Planted planted = planted_divergence(log_spaced);
        const double tol = 1e-3 * planted.critical_lr;
        refine::RefineOptions options;
        options.axis = "lr";
        options.quantity = refine::Quantity::diverged_fraction;
        options.tol = tol;
        auto backend = make_cpu_backend(2);
        refine::RefineReport report;
        const auto table = refine::refine_boundaries(planted.spec, run_statuses(planted.spec), *backend, options, report);
        ASSERT_EQ(table.combinations(), 1u);
        EXPECT_EQ(table.text_attributes.at("bisection"), log_spaced ? "geometric" : "arithmetic");
        EXPECT_NEAR(table.estimate[0], planted.critical_lr, tol);
        EXPECT_LE(table.bracket_low[0], planted.critical_lr + tol / 2);
        EXPECT_GE(table.bracket_high[0], planted.critical_lr - tol / 2);
        EXPECT_LE(table.bracket_high[0] - table.bracket_low[0], tol);
        EXPECT_EQ(table.standard_error[0], 0.0); // one seed
        if (!log_spaced) {
            // Cost: ceil(log2(width / tol)) probes where a dense grid needs width / tol + 1 points.
            const double width = 0.6 * planted.critical_lr;
            EXPECT_EQ(table.probes_run[0], static_cast<std::int64_t>(std::ceil(std::log2(width / tol))));
            EXPECT_EQ(report.trajectories, table.probes_run[0]);
            EXPECT_EQ(report.dense_trajectories, static_cast<std::int64_t>(std::floor(width / tol)) + 1);
        }
        for (std::int64_t p = 0; p < table.probes_run[0]; ++p) {
            // Every probe on the correct side of the exact boundary.
            const double value = table.probe_value[static_cast<std::size_t>(p)];
            if (std::abs(value - planted.critical_lr) > 5e-4 * planted.critical_lr) {
                EXPECT_EQ(table.probe_quantity[static_cast<std::size_t>(p)], value > planted.critical_lr ? 1.0 : 0.0);
            }
        }
    }
}

TEST(Refinement, RejectsAxesItCannotBracket) {
    const Planted planted = planted_divergence(false);
    auto backend = make_cpu_backend(1);
    refine::RefineReport report;
    refine::RefineOptions options;
    options.axis = "frustration"; // a single value in this spec
    const auto status = run_statuses(planted.spec);
    EXPECT_THROW(refine::refine_boundaries(planted.spec, status, *backend, options, report), std::invalid_argument);
    options.axis = "head_dim";
    EXPECT_THROW(refine::refine_boundaries(planted.spec, status, *backend, options, report), std::invalid_argument);
    options.axis = "lr";
    std::vector<std::int8_t> unfinished = status;
    unfinished[0] = -1;
    EXPECT_THROW(refine::refine_boundaries(planted.spec, unfinished, *backend, options, report), std::invalid_argument);
}

} // namespace
} // namespace collapse::testing
