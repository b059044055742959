// The effects SPEC's table promises, on the sizes the paper's figures use.
#include <gtest/gtest.h>

#include <cmath>

#include "reference.hpp"

namespace collapse::testing {
namespace {

ModelShape paper_shape() {
    ModelShape shape; // K = 4, n = 50, d = 8
    return shape;
}

TrajectoryParams params_for(double frustration, int head_dim, bool stop_gradient, double lr, std::int64_t seed = 0) {
    TrajectoryParams params;
    params.frustration = frustration;
    params.head_dim = head_dim;
    params.stop_gradient = stop_gradient;
    params.lr = lr;
    params.seed_index = seed;
    return params;
}

TEST(CollapsePhysics, FrustrationDrivesCollapseAndSpeedsItUp) {
    RunOptions options;
    options.max_steps = 40000;
    for (std::int64_t seed : {0, 1}) {
        const SingleRun clean = run_single(paper_shape(), params_for(0.0, 0, false, 0.5, seed), options);
        EXPECT_EQ(clean.summary.status, TrajectoryStatus::stable);
        EXPECT_NEAR(clean.summary.final_label_distance, 1.0, 1e-9);

        const SingleRun light = run_single(paper_shape(), params_for(0.1, 0, false, 0.5, seed), options);
        const SingleRun heavy = run_single(paper_shape(), params_for(0.3, 0, false, 0.5, seed), options);
        ASSERT_EQ(light.summary.status, TrajectoryStatus::collapsed);
        ASSERT_EQ(heavy.summary.status, TrajectoryStatus::collapsed);
        EXPECT_LT(heavy.summary.collapse_time, light.summary.collapse_time);
        // The early gain: accuracy peaks long before collapse.
        EXPECT_LT(light.summary.peak_accuracy_step, light.summary.collapse_step / 4);
        EXPECT_GT(light.summary.peak_accuracy, 0.8);
        // Interpolated crossing lies inside the bracketing step.
        const auto collapse_step = static_cast<double>(light.summary.collapse_step);
        EXPECT_GT(light.summary.collapse_time, 0.5 * (collapse_step - 1));
        EXPECT_LE(light.summary.collapse_time, 0.5 * collapse_step);
    }
}

TEST(CollapsePhysics, HeadWithoutStopGradientCollapsesSooner) {
    RunOptions options;
    options.max_steps = 40000;
    const double lr = 0.05;
    const SingleRun plain = run_single(paper_shape(), params_for(0.1, 0, false, lr), options);
    const SingleRun head = run_single(paper_shape(), params_for(0.1, 8, false, lr), options);
    ASSERT_EQ(head.summary.status, TrajectoryStatus::collapsed);
    if (plain.summary.status == TrajectoryStatus::collapsed) {
        EXPECT_LT(head.summary.collapse_step, plain.summary.collapse_step);
    }
    // Even without frustration the head shrinks to zero quickly.
    options.projected_metric = true;
    const SingleRun clean_head = run_single(paper_shape(), params_for(0.0, 8, false, lr), options);
    EXPECT_EQ(clean_head.summary.status, TrajectoryStatus::collapsed);
}

TEST(CollapsePhysics, WideHeadWithStopGradientKeepsClassesApart) {
    RunOptions options;
    options.max_steps = 20000;
    const SingleRun run = run_single(paper_shape(), params_for(0.1, 8, true, 0.05), options);
    EXPECT_EQ(run.summary.status, TrajectoryStatus::stable);
    EXPECT_EQ(run.summary.final_step, 20000);
    EXPECT_GT(run.summary.final_label_distance, 0.05);
    for (double value : run.label_distance) EXPECT_GT(value, 0.05);
}

TEST(CollapsePhysics, TeacherStudentFollowsEncoderCapacity) {
    ModelShape shape = paper_shape();
    shape.kind = ModelKind::teacher_student;
    shape.samples_per_class = 10; // N = 40
    RunOptions options;
    options.max_steps = 40000;
    // ||u_i||^2 ~ p stiffens the flow, so a smaller lr than the embedding model's.
    const double lr = 0.1;
    shape.input_dim = 64; // p >= N: the encoder can place every sample freely
    const SingleRun wide_clean = run_single(shape, params_for(0.0, 0, false, lr), options);
    EXPECT_EQ(wide_clean.summary.status, TrajectoryStatus::stable);
    EXPECT_GT(wide_clean.summary.final_label_distance, 0.5);
    const SingleRun wide_frustrated = run_single(shape, params_for(0.1, 0, false, lr), options);
    EXPECT_EQ(wide_frustrated.summary.status, TrajectoryStatus::collapsed);
    shape.input_dim = 8; // p < N: intrinsic frustration
    const SingleRun narrow_clean = run_single(shape, params_for(0.0, 0, false, lr), options);
    EXPECT_EQ(narrow_clean.summary.status, TrajectoryStatus::collapsed);
}

TEST(CollapsePhysics, StopOnCollapseLeavesNaNAfterStop) {
    RunOptions options;
    options.max_steps = 40000;
    const SingleRun run = run_single(paper_shape(), params_for(0.3, 0, false, 0.5), options);
    ASSERT_EQ(run.summary.status, TrajectoryStatus::collapsed);
    EXPECT_EQ(run.summary.final_step, run.summary.collapse_step);
    EXPECT_LT(run.summary.final_label_distance, 0.05);
    for (std::size_t j = 0; j < run.steps.size(); ++j) {
        EXPECT_EQ(std::isnan(run.label_distance[j]), run.steps[j] > run.summary.final_step) << "record " << j;
    }
}

} // namespace
} // namespace collapse::testing
