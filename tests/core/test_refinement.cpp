// Phase-boundary refinement: the bisection arithmetic, a planted boundary
// whose location is known exactly (gd divergence at lr_c = 2/lambda_max of the
// plain model), and the cost against a dense grid of the same resolution.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>

#include "collapse/backend/backend.hpp"
#include "collapse/refine/bisection.hpp"
#include "collapse/refine/boundary_refinement.hpp"
#include "reference.hpp"
#include "spec_builder.hpp"

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
    planted.spec = test_spec({.classes = 4, .samples_per_class = 8, .dim = 3,
                              .max_steps = 60000, // divergence at lr_c (1 + e) takes ~ ln(1e12) / (4 e) steps
                              .stop_on_collapse = false, .record_points = 8, .master_seed = 5, .seeds = 1});
    SweepSpec& spec = planted.spec;
    const double frustration = 0.25;
    const SeedDraws draws = draw_seed(spec.shape, 0, spec.master_seed, 0);
    const Eigen eigen =
        symmetric_eigen(scaled_laplacian(pair_list(draws, frustration), spec.shape.samples(), spec.shape.classes));
    planted.critical_lr = 2.0 / eigen.values.back();
    const double lr_c = planted.critical_lr;
    spec.axes = {frustration_axis({frustration}), head_dim_axis({0}),
                 log_spaced ? real_axis("lr", {0.3 * lr_c, 0.6 * lr_c, 1.2 * lr_c}, true) // ratio 2
                            : lr_axis({0.7 * lr_c, 1.3 * lr_c})};
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
            const double width = planted.spec.axes[2].values[1] - planted.spec.axes[2].values[0];
            EXPECT_EQ(table.probes_run[0], static_cast<std::int64_t>(std::ceil(std::log2(width / tol))));
            EXPECT_EQ(report.trajectories, table.probes_run[0]);
            // What the dense count means: n points at spacing tol span the range, n + 1 would overshoot it.
            // (Not floor(width / tol) + 1: the ratio is 600 up to the last bits of lr_c, which move with the
            // LAPACK behind the reference eigensolver, and the floor jumps between 599 and 600.)
            const auto dense = static_cast<double>(report.dense_trajectories);
            EXPECT_LE((dense - 1) * tol, width * (1 + 1e-9));
            EXPECT_GT(dense * tol, width * (1 + 1e-9));
            EXPECT_EQ(report.grid_reruns, 0); // the spec already runs past collapse
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

// Collapse enabled (the default stop_on_collapse = true), f > 0, five seeds:
// near its own lr_c a seed may collapse long before its slowly growing
// unstable mode diverges, so a run stopped at collapse reports "collapsed"
// above lr_c (here seed 0, lr_c = 6.466, up to lr = 7.0, and seed 4). Refining
// diverged_fraction must not be fooled: at level 0.5 the boundary is the
// median of the seeds' own 2/lambda_max (seed 0's). Probes stopped at
// collapse gave 6.512, 7 tol too high.
TEST(Refinement, DivergenceBoundaryIsTheMedianCriticalLrDespiteCollapse) {
    SweepSpec spec = test_spec({.classes = 4, .samples_per_class = 10, .dim = 8,
                                // detection delay ln(1e12) / (4 e) steps at lr_c (1 + e): e ~ 3.5e-4
                                .max_steps = 20000, .stop_on_collapse = true, .record_points = 8,
                                .master_seed = 2026, .seeds = 5});
    const double frustration = 0.3;
    std::vector<double> critical;
    for (std::int64_t seed = 0; seed < spec.seeds; ++seed) {
        const SeedDraws draws = draw_seed(spec.shape, 0, spec.master_seed, seed);
        const Eigen eigen = symmetric_eigen(
            scaled_laplacian(pair_list(draws, frustration), spec.shape.samples(), spec.shape.classes));
        critical.push_back(2.0 / eigen.values.back());
    }
    std::vector<double> sorted = critical;
    std::sort(sorted.begin(), sorted.end());
    const double median = sorted[2];
    spec.axes = {frustration_axis({frustration}), head_dim_axis({0}), lr_axis({0.5 * sorted.front(), 1.5 * sorted.back()})};
    const std::vector<std::int8_t> status = run_statuses(spec);

    refine::RefineOptions options;
    options.axis = "lr";
    options.quantity = refine::Quantity::diverged_fraction;
    options.tol = 1e-3 * median;
    auto backend = make_cpu_backend(2);
    refine::RefineReport report;
    const auto table = refine::refine_boundaries(spec, status, *backend, options, report);
    ASSERT_EQ(table.combinations(), 1u);
    EXPECT_NEAR(table.estimate[0], median, options.tol) << "seeds' lr_c: " << sorted[0] << ' ' << sorted[1] << ' '
                                                        << sorted[2] << ' ' << sorted[3] << ' ' << sorted[4];
    EXPECT_EQ(table.number_attributes.at("probe_stop_on_collapse"), 0.0);
    EXPECT_NE(table.text_attributes.at("stop_on_collapse_note").find("past collapse"), std::string::npos);
    EXPECT_EQ(report.grid_reruns, std::count(status.begin(), status.end(), 1));
    // Every probe on the correct side of each seed's own lr_c, away from the detection delay.
    std::int64_t checked = 0;
    for (std::int64_t p = 0; p < table.probes_run[0]; ++p) {
        const double value = table.probe_value[static_cast<std::size_t>(p)];
        const auto diverging = std::count_if(critical.begin(), critical.end(), [&](double c) { return value > c; });
        const bool near = std::any_of(critical.begin(), critical.end(),
                                      [&](double c) { return std::abs(value - c) < 5e-4 * c; });
        if (near) continue;
        EXPECT_EQ(table.probe_quantity[static_cast<std::size_t>(p)], static_cast<double>(diverging) / 5) << value;
        ++checked;
    }
    EXPECT_GT(checked, 3);
}

// A backend whose statuses are a scripted function of the parameters, and
// which records the collapse settings of every batch it was given.
class FunctionBackend : public Backend {
public:
    explicit FunctionBackend(std::function<TrajectoryStatus(const TrajectoryParams&)> status)
        : status_(std::move(status)) {}
    std::string name() const override { return "function"; }
    std::string device_name() const override { return "none"; }
    std::int64_t default_batch_size(const SweepSpec&) const override { return 4; }
    void run_batch(const SweepSpec& spec, const Grid& grid, std::span<const std::int64_t> flat,
                   BatchOutput& out) override {
        stop_on_collapse_seen.push_back(spec.collapse.stop_on_collapse);
        out.flat_index.assign(flat.begin(), flat.end());
        out.summary.assign(flat.size(), TrajectorySummary{});
        for (std::size_t b = 0; b < flat.size(); ++b) out.summary[b].status = status_(grid.params(flat[b]));
        runs += static_cast<std::int64_t>(flat.size());
    }
    std::vector<bool> stop_on_collapse_seen;
    std::int64_t runs = 0;

private:
    std::function<TrajectoryStatus(const TrajectoryParams&)> status_;
};

SweepSpec lr_grid_spec(std::vector<double> lr, std::int64_t seeds) {
    return tiny_spec(seeds, {frustration_axis({0.0, 0.5}), head_dim_axis({0}), lr_axis(std::move(lr))});
}

TEST(Refinement, NonMonotoneQuantityRecordsEveryCrossingAndRefinesTheFirst) {
    // Collapsed for lr in (0.2, 0.4) and above 0.8 at f = 0; never at f = 0.5.
    FunctionBackend backend([](const TrajectoryParams& p) {
        const bool collapsed = p.frustration == 0.0 && ((p.lr > 0.2 && p.lr < 0.4) || p.lr > 0.8);
        return collapsed ? TrajectoryStatus::collapsed : TrajectoryStatus::stable;
    });
    const SweepSpec spec = lr_grid_spec({0.1, 0.3, 0.5, 0.7, 0.9}, 2);
    std::vector<std::int8_t> status(static_cast<std::size_t>(Grid(spec).size()));
    for (std::int64_t flat = 0; flat < Grid(spec).size(); ++flat) {
        const TrajectoryParams params = Grid(spec).params(flat);
        const bool collapsed = params.frustration == 0.0 && ((params.lr > 0.2 && params.lr < 0.4) || params.lr > 0.8);
        status[static_cast<std::size_t>(flat)] = collapsed ? 1 : 0;
    }
    refine::RefineOptions options;
    options.axis = "lr";
    options.tol = 1e-3;
    refine::RefineReport report;
    const auto table = refine::refine_boundaries(spec, status, backend, options, report);
    ASSERT_EQ(table.combinations(), 2u);
    EXPECT_EQ(report.non_monotone, 1);
    EXPECT_EQ(table.crossings, (std::vector<std::int64_t>{3, 0}));
    ASSERT_EQ(table.crossing_slots, 3);
    EXPECT_NEAR(table.estimate[0], 0.2, options.tol); // the first crossing in axis order
    EXPECT_EQ(table.crossing_low[0], table.bracket_low[0]);
    EXPECT_EQ(table.crossing_high[0], table.bracket_high[0]);
    EXPECT_EQ(table.crossing_low[1], 0.3);
    EXPECT_EQ(table.crossing_high[1], 0.5);
    EXPECT_EQ(table.crossing_low[2], 0.7);
    EXPECT_EQ(table.crossing_high[2], 0.9);
    EXPECT_TRUE(std::isnan(table.crossing_low[3]) && std::isnan(table.estimate[1]));
    const std::string warning = refine::non_monotone_warning(table);
    EXPECT_NE(warning.find("non-monotone"), std::string::npos) << warning;
    EXPECT_NE(warning.find("frustration=0 head_dim=0"), std::string::npos) << warning;
    EXPECT_NE(warning.find("[0.3, 0.5], [0.7, 0.9]"), std::string::npos) << warning;
    EXPECT_EQ(warning.find("frustration=0.5"), std::string::npos) << warning;
    // Collapse is the quantity: the sweep's own settings, nothing re-run.
    EXPECT_EQ(report.grid_reruns, 0);
    for (bool stop : backend.stop_on_collapse_seen) EXPECT_TRUE(stop);
}

TEST(Refinement, DivergedFractionRunsPastCollapse) {
    // Every trajectory collapses when stopped at collapse; run past it, those with lr > 0.55 diverge.
    FunctionBackend backend([](const TrajectoryParams& p) { return p.lr > 0.55 ? TrajectoryStatus::diverged
                                                                             : TrajectoryStatus::stable; });
    const SweepSpec spec = lr_grid_spec({0.1, 0.3, 0.5, 0.7, 0.9}, 3);
    ASSERT_TRUE(spec.collapse.stop_on_collapse);
    const std::vector<std::int8_t> status(static_cast<std::size_t>(Grid(spec).size()), 1); // as the sweep saw it
    refine::RefineOptions options;
    options.axis = "lr";
    options.quantity = refine::Quantity::diverged_fraction;
    options.tol = 1e-3;
    refine::RefineReport report;
    const auto table = refine::refine_boundaries(spec, status, backend, options, report);
    EXPECT_EQ(report.grid_reruns, Grid(spec).size());
    EXPECT_EQ(backend.runs, report.grid_reruns + report.trajectories);
    ASSERT_FALSE(backend.stop_on_collapse_seen.empty());
    for (bool stop : backend.stop_on_collapse_seen) EXPECT_FALSE(stop);
    for (double estimate : table.estimate) EXPECT_NEAR(estimate, 0.55, options.tol);
    EXPECT_EQ(table.number_attributes.at("grid_trajectories_rerun"), static_cast<double>(Grid(spec).size()));
    EXPECT_TRUE(refine::non_monotone_warning(table).empty());
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
