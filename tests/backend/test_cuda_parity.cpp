// The CUDA backend against the CPU backend on a grid that mixes every status:
// float64 results agree to 1e-9 relative, float32 statuses agree exactly and
// collapse steps within 1%, with each of the four kernels (thread, block and
// warp per trajectory, and the fused block kernel at d = 8). Skipped without a usable CUDA device, except the check that
// the grid really is mixed, which runs on the CPU alone.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <tuple>

#include "backend_test_support.hpp"
#include "collapse/sweep/grid.hpp"

namespace collapse::testing {
namespace {

constexpr double float64_relative_tolerance = 1e-9;
constexpr double float32_collapse_step_tolerance = 0.01;

TEST(ParityGrid, HasEveryStatusOnTheCpu) {
    const SweepSpec spec = parity_spec(Precision::float64, IntegratorMethod::gd);
    const auto cpu = make_cpu_backend(2);
    std::set<TrajectoryStatus> statuses;
    for (const auto& [flat, output] : run_grid(*cpu, spec, 64)) statuses.insert(output.summary[0].status);
    EXPECT_TRUE(statuses.count(TrajectoryStatus::stable));
    EXPECT_TRUE(statuses.count(TrajectoryStatus::collapsed));
    EXPECT_TRUE(statuses.count(TrajectoryStatus::diverged));
}

// (integrator, kernel).
class CudaParity : public ::testing::TestWithParam<std::tuple<IntegratorMethod, const char*>> {
protected:
    void SetUp() override {
        std::string skip;
        cuda_ = cuda_backend_with_kernel(std::get<1>(GetParam()), skip);
        if (!cuda_) GTEST_SKIP() << skip;
    }
    std::unique_ptr<Backend> cuda_;
};

TEST_P(CudaParity, Float64MatchesTheCpuBackend) {
    const SweepSpec spec = spec_for_kernel(parity_spec(Precision::float64, std::get<0>(GetParam())), std::get<1>(GetParam()));
    const auto cpu = make_cpu_backend(2);
    expect_close_results(run_grid(*cpu, spec, 64), run_grid(*cuda_, spec, 64), float64_relative_tolerance);
}

TEST_P(CudaParity, Float32StatusesAndCollapseStepsMatchTheCpuBackend) {
    const SweepSpec spec = spec_for_kernel(parity_spec(Precision::float32, std::get<0>(GetParam())), std::get<1>(GetParam()));
    const auto cpu = make_cpu_backend(2);
    expect_same_statuses(run_grid(*cpu, spec, 64), run_grid(*cuda_, spec, 64), float32_collapse_step_tolerance);
}

std::string integrator_and_kernel(const ::testing::TestParamInfo<std::tuple<IntegratorMethod, const char*>>& info) {
    return std::string(std::get<0>(info.param) == IntegratorMethod::gd ? "gd_" : "rk4_") + std::get<1>(info.param);
}

INSTANTIATE_TEST_SUITE_P(IntegratorsAndKernels, CudaParity,
                         ::testing::Combine(::testing::Values(IntegratorMethod::gd, IntegratorMethod::rk4),
                                            ::testing::Values("thread", "team", "warp")),
                         integrator_and_kernel);
// gd only: rk4 on COLLAPSE_CUDA_KERNEL=block runs the team kernel.
INSTANTIATE_TEST_SUITE_P(FusedBlockKernel, CudaParity,
                         ::testing::Combine(::testing::Values(IntegratorMethod::gd), ::testing::Values("block", "block_tc")),
                         integrator_and_kernel);

// The tensor-core path at d = 16, 32 and 64, where every product (float32's
// G too) is on mma tiles: the host emulation's BlockTensorHostEmulation case on the device.
TEST(CudaTensorCores, WiderDimensionsMatchTheCpuBackend) {
    std::string skip;
    const auto cuda = cuda_backend_with_kernel("block_tc", skip);
    if (!cuda) GTEST_SKIP() << skip;
    for (Precision precision : {Precision::float64, Precision::float32})
        for (int dim : {16, 32, 64}) {
            SCOPED_TRACE((precision == Precision::float64 ? "float64, d = " : "float32, d = ") + std::to_string(dim));
            const SweepSpec spec = tensor_tile_spec(precision, dim, 300);
            const auto cpu = make_cpu_backend(2);
            const auto expected = run_grid(*cpu, spec, 64), actual = run_grid(*cuda, spec, 64);
            if (precision == Precision::float64) expect_close_results(expected, actual, float64_relative_tolerance);
            else expect_same_statuses(expected, actual, float32_collapse_step_tolerance);
        }
}

TEST_F(CudaBackendTest, TeacherStudentFloat64MatchesTheCpuBackend) {
    SweepSpec spec = teacher_student_spec(Precision::float64);
    spec.axes[3].values = {0.06, 4.0}; // not the chaotic lr of mixed_spec (backend_test_support.hpp)
    const auto cpu = make_cpu_backend(2);
    expect_close_results(run_grid(*cpu, spec, 64), run_grid(*cuda_, spec, 64), float64_relative_tolerance);
}

TEST_F(CudaBackendTest, ProjectedMetricWithoutEarlyStopMatchesTheCpuBackend) {
    SweepSpec spec = parity_spec(Precision::float64, IntegratorMethod::gd);
    spec.collapse.metric = CollapseMetric::projected;
    spec.collapse.stop_on_collapse = false;
    const auto cpu = make_cpu_backend(2);
    expect_close_results(run_grid(*cpu, spec, 64), run_grid(*cuda_, spec, 64), float64_relative_tolerance);
}

TEST_F(CudaBackendTest, InitialHeadIsTheCpuBackendsBitForBit) {
    // The saved head and D_ref come from the same host setup code on both backends
    // (the states themselves are made on the device; InitialStateGeneration.* checks them).
    const SweepSpec spec = mixed_spec(Precision::float32, IntegratorMethod::gd);
    const auto cpu = make_cpu_backend(1);
    const auto expected = run_grid(*cpu, spec, 64), actual = run_grid(*cuda_, spec, 64);
    for (const auto& [flat, output] : expected) {
        EXPECT_EQ(output.initial_head_A, actual.at(flat).initial_head_A) << flat;
        EXPECT_EQ(output.initial_head_B, actual.at(flat).initial_head_B) << flat;
        EXPECT_EQ(output.summary[0].reference_distance, actual.at(flat).summary[0].reference_distance) << flat;
    }
}

TEST_F(CudaBackendTest, ReportsItsDevice) {
    EXPECT_EQ(cuda_->name(), "cuda");
    EXPECT_FALSE(cuda_->device_name().empty());
    const SweepSpec spec = mixed_spec(Precision::float64, IntegratorMethod::rk4);
    EXPECT_GE(cuda_->default_batch_size(spec), 1);
}

TEST_F(CudaBackendTest, RejectsBadGridValuesBeforeRunning) {
    SweepSpec spec = mixed_spec(Precision::float64, IntegratorMethod::gd);
    spec.axes[3].values = {0.3, -1.0};
    const Grid grid(spec);
    BatchOutput batch;
    const std::vector<std::int64_t> all{0, 1, 2, 3};
    EXPECT_THROW(cuda_->run_batch(spec, grid, all, batch), std::invalid_argument);
}

} // namespace
} // namespace collapse::testing
