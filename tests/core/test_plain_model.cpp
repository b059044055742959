// The plain model (h = 0) is linear: Z' = -(1/M) L_G Z. These tests compare
// the engine against that closed form, built independently from the draws.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "reference.hpp"

namespace collapse::testing {
namespace {

ModelShape small_shape(int classes = 4, int per_class = 6, int dim = 3) {
    ModelShape shape;
    shape.classes = classes;
    shape.samples_per_class = per_class;
    shape.dim = dim;
    return shape;
}

TrajectoryParams plain_params(double frustration, double lr, std::int64_t seed = 0) {
    TrajectoryParams params;
    params.frustration = frustration;
    params.lr = lr;
    params.seed_index = seed;
    return params;
}

TEST(PlainModel, GradientDescentEqualsMatrixPower) {
    const ModelShape shape = small_shape();
    const TrajectoryParams params = plain_params(0.25, 0.7, 3);
    RunOptions options;
    options.max_steps = 37;
    options.stop_on_collapse = false;
    const SingleRun run = run_single(shape, params, options);

    const SeedDraws draws = draw_seed(shape, 0, options.master_seed, params.seed_index);
    const DenseMatrix laplacian = scaled_laplacian(pair_list(draws, params.frustration), shape.samples(), shape.classes);
    DenseMatrix step_matrix(laplacian.size);
    for (int r = 0; r < laplacian.size; ++r)
        for (int c = 0; c < laplacian.size; ++c) step_matrix(r, c) = (r == c ? 1.0 : 0.0) - params.lr * laplacian(r, c);
    DenseMatrix power = step_matrix;
    for (int k = 1; k < options.max_steps; ++k) power = multiply(power, step_matrix);
    const std::vector<double> expected = apply(power, run.initial_state, shape.dim);

    ASSERT_EQ(expected.size(), run.final_state.size());
    double scale = 0;
    for (double v : expected) scale = std::max(scale, std::abs(v));
    for (std::size_t e = 0; e < expected.size(); ++e)
        EXPECT_NEAR(run.final_state[e], expected[e], 1e-10 * scale) << "element " << e;
    EXPECT_EQ(run.summary.final_step, options.max_steps);
}

TEST(PlainModel, UnfrustratedSeparationConvergesToReference) {
    ModelShape shape = small_shape(4, 50, 8);
    RunOptions options;
    options.max_steps = 3000;
    const SingleRun run = run_single(shape, plain_params(0.0, 0.5), options);
    EXPECT_EQ(run.summary.status, TrajectoryStatus::stable);
    EXPECT_GT(run.summary.initial_label_distance, 2.0); // D(0) is several D_ref
    EXPECT_NEAR(run.summary.final_label_distance, 1.0, 1e-9);
    EXPECT_NEAR(run.label_distance.back(), 1.0, 1e-9);
}

// Finds a graph whose asymptotic rate is not lambda_2: at small f the graph
// splits into components, and the fastest-decaying pair lives in the
// component with the larger gap.
TEST(PlainModel, SlowRateMatchesClosedFormIncludingNonLambda2Graph) {
    const ModelShape shape = small_shape(4, 5, 2);
    RunOptions options;
    options.stop_on_collapse = false;
    int checked = 0;
    bool saw_not_lambda2 = false;
    for (std::int64_t seed = 0; seed < 40 && (checked < 3 || !saw_not_lambda2); ++seed) {
        for (double frustration : {0.1, 0.3}) {
            const SeedDraws draws = draw_seed(shape, 0, options.master_seed, seed);
            const Eigen eigen =
                symmetric_eigen(scaled_laplacian(pair_list(draws, frustration), shape.samples(), shape.classes));
            const double flow_rate = asymptotic_flow_rate(eigen, shape.samples(), shape.classes);
            if (flow_rate <= 0) continue; // nothing collapses
            const bool not_lambda2 = flow_rate > 1.2 * smallest_nonzero_eigenvalue(eigen);
            if (checked >= 3 && !not_lambda2) continue;
            const double lr = 0.5;
            const double gd_rate = -std::log(1 - lr * flow_rate) / lr;
            TrajectoryParams params = plain_params(frustration, lr, seed);
            // Long enough to reach label_distance < 1e-6 from D(0)/D_ref ~ 10.
            options.max_steps = static_cast<std::int64_t>(std::log(1e8) / gd_rate / lr) + 200;
            const SingleRun run = run_single(shape, params, options);
            SCOPED_TRACE("seed " + std::to_string(seed) + " f " + std::to_string(frustration));
            ASSERT_LT(run.summary.final_label_distance, 1e-6);
            EXPECT_NEAR(run.summary.slow_rate / gd_rate, 1.0, 0.05);
            ++checked;
            saw_not_lambda2 = saw_not_lambda2 || not_lambda2;
        }
    }
    EXPECT_GE(checked, 3);
    EXPECT_TRUE(saw_not_lambda2) << "no graph with rate != lambda_2 among the seeds searched";
}

TEST(PlainModel, DivergenceBoundaryAtTwoOverLambdaMax) {
    const ModelShape shape = small_shape(4, 8, 3);
    const double frustration = 0.2;
    RunOptions options;
    options.max_steps = 4000;
    options.stop_on_collapse = false;
    const SeedDraws draws = draw_seed(shape, 0, options.master_seed, 0);
    const Eigen eigen = symmetric_eigen(scaled_laplacian(pair_list(draws, frustration), shape.samples(), shape.classes));
    const double critical_lr = 2.0 / eigen.values.back();

    const SingleRun below = run_single(shape, plain_params(frustration, 0.98 * critical_lr), options);
    EXPECT_NE(below.summary.status, TrajectoryStatus::diverged);
    EXPECT_TRUE(std::isfinite(below.summary.final_loss));
    const SingleRun above = run_single(shape, plain_params(frustration, 1.02 * critical_lr), options);
    EXPECT_EQ(above.summary.status, TrajectoryStatus::diverged);
    EXPECT_LT(above.summary.final_step, options.max_steps);
    EXPECT_EQ(above.summary.collapse_step, -1);
}

// RK4 error against exp(-t L/M) Z0 falls by 2^4 when dt halves.
TEST(PlainModel, RungeKutta4IsFourthOrder) {
    const ModelShape shape = small_shape(3, 4, 2);
    const TrajectoryParams base = plain_params(0.25, 1.0, 1);
    const double end_time = 4.0;
    const SeedDraws draws = draw_seed(shape, 0, 7, base.seed_index);
    const Eigen eigen = symmetric_eigen(scaled_laplacian(pair_list(draws, base.frustration), shape.samples(), shape.classes));
    DenseMatrix propagator(eigen.vectors.size);
    for (int r = 0; r < propagator.size; ++r)
        for (int c = 0; c < propagator.size; ++c)
            for (int j = 0; j < propagator.size; ++j)
                propagator(r, c) += eigen.vectors(r, j) * std::exp(-end_time * eigen.values[j]) * eigen.vectors(c, j);

    std::vector<double> errors;
    for (double dt : {0.8, 0.4, 0.2}) {
        TrajectoryParams params = base;
        params.lr = dt;
        RunOptions options;
        options.method = IntegratorMethod::rk4;
        options.max_steps = static_cast<std::int64_t>(std::llround(end_time / dt));
        options.stop_on_collapse = false;
        const SingleRun run = run_single(shape, params, options);
        const std::vector<double> exact = apply(propagator, run.initial_state, shape.dim);
        double error = 0;
        for (std::size_t e = 0; e < exact.size(); ++e) error = std::max(error, std::abs(run.final_state[e] - exact[e]));
        errors.push_back(error);
    }
    for (std::size_t j = 1; j < errors.size(); ++j) {
        const double order = std::log2(errors[j - 1] / errors[j]);
        EXPECT_NEAR(order, 4.0, 0.35) << "errors " << errors[j - 1] << " -> " << errors[j];
    }
}

TEST(PlainModel, StopGradientChangesNothingWithoutHead) {
    const ModelShape shape = small_shape(4, 10, 4);
    for (Precision precision : {Precision::float32, Precision::float64}) {
        RunOptions options;
        options.precision = precision;
        options.max_steps = 500;
        TrajectoryParams params = plain_params(0.2, 0.5, 2);
        const SingleRun without = run_single(shape, params, options);
        params.stop_gradient = true;
        const SingleRun with = run_single(shape, params, options);
        EXPECT_EQ(0, std::memcmp(without.final_state.data(), with.final_state.data(), with.final_state.size() * sizeof(double)));
        EXPECT_EQ(0, std::memcmp(without.label_distance.data(), with.label_distance.data(),
                                 with.label_distance.size() * sizeof(double)));
        EXPECT_EQ(without.summary.collapse_step, with.summary.collapse_step);
    }
}

} // namespace
} // namespace collapse::testing
