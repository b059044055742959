// SPEC §5 on the GPU: results do not depend on the batch size, the batch
// composition or the order in which lanes are refilled. Each trajectory runs
// the same code on one thread, one block of fixed size or one warp, whatever
// the batch, so the outputs must agree bit for bit.
#include <gtest/gtest.h>

#include <string>

#include "backend_test_support.hpp"

namespace collapse::testing {
namespace {

class CudaBatchInvariance
    : public ::testing::TestWithParam<std::tuple<Precision, IntegratorMethod, const char*>> {};

TEST_P(CudaBatchInvariance, BitIdenticalAcrossBatchSizes) {
    const auto [precision, method, kernel] = GetParam();
    std::string skip;
    const auto cuda = cuda_backend_with_kernel(kernel, skip);
    if (!cuda) GTEST_SKIP() << skip;
    const SweepSpec spec = spec_for_kernel(mixed_spec(precision, method), kernel);
    const auto reference = run_grid(*cuda, spec, 1);
    for (std::int64_t batch_size : {7, 64}) {
        SCOPED_TRACE("batch size " + std::to_string(batch_size));
        expect_bit_identical(reference, run_grid(*cuda, spec, batch_size));
    }
}

std::string precision_method_and_kernel(
    const ::testing::TestParamInfo<std::tuple<Precision, IntegratorMethod, const char*>>& info) {
    return std::string(std::get<0>(info.param) == Precision::float32 ? "float32_" : "float64_") +
           (std::get<1>(info.param) == IntegratorMethod::gd ? "gd_" : "rk4_") + std::get<2>(info.param);
}

INSTANTIATE_TEST_SUITE_P(PrecisionMethodAndKernel, CudaBatchInvariance,
                         ::testing::Combine(::testing::Values(Precision::float32, Precision::float64),
                                            ::testing::Values(IntegratorMethod::gd, IntegratorMethod::rk4),
                                            ::testing::Values("thread", "team", "warp")),
                         precision_method_and_kernel);
INSTANTIATE_TEST_SUITE_P(FusedBlockKernel, CudaBatchInvariance,
                         ::testing::Combine(::testing::Values(Precision::float32, Precision::float64),
                                            ::testing::Values(IntegratorMethod::gd), ::testing::Values("block", "block_tc")),
                         precision_method_and_kernel);

TEST_F(CudaBackendTest, RepeatedRunsOnOneBackendAreBitIdentical) {
    // Buffers are reused across batches; stale contents must not leak in.
    const SweepSpec wide = mixed_spec(Precision::float64, IntegratorMethod::rk4);
    const SweepSpec narrow = mixed_spec(Precision::float64, IntegratorMethod::gd);
    const auto first = run_grid(*cuda_, narrow, 64);
    run_grid(*cuda_, wide, 64);
    expect_bit_identical(first, run_grid(*cuda_, narrow, 5));
}

// The warp and the 32-thread block run the same team code and differ only in
// how the loss's per-lane parts are added (butterfly against rank order):
// every other result is the same, and the loss within rounding.
TEST(CudaKernels, WarpAndBlockOfThirtyTwoAgree) {
    std::string skip;
    const auto warp = cuda_backend_with_kernel("warp", skip);
    const auto team = cuda_backend_with_kernel("team", skip);
    if (!warp || !team) GTEST_SKIP() << skip;
    for (IntegratorMethod method : {IntegratorMethod::gd, IntegratorMethod::rk4}) {
        const SweepSpec spec = mixed_spec(Precision::float64, method); // N d = 96: a 32-thread block
        expect_close_results(run_grid(*team, spec, 64), run_grid(*warp, spec, 64), 1e-13);
    }
}

} // namespace
} // namespace collapse::testing
