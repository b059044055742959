// SPEC §5 on the GPU: results do not depend on the batch size, the batch
// composition or the order in which lanes are refilled. Each trajectory runs
// the same code on one thread or one block of fixed size, whatever the batch,
// so the outputs must agree bit for bit.
#include <gtest/gtest.h>

#include "backend_test_support.hpp"

namespace collapse::testing {
namespace {

class CudaBatchInvariance
    : public CudaBackendTest,
      public ::testing::WithParamInterface<std::tuple<Precision, IntegratorMethod>> {};

TEST_P(CudaBatchInvariance, BitIdenticalAcrossBatchSizes) {
    const auto [precision, method] = GetParam();
    const SweepSpec spec = mixed_spec(precision, method);
    const auto reference = run_grid(*cuda_, spec, 1);
    for (std::int64_t batch_size : {7, 64}) {
        SCOPED_TRACE("batch size " + std::to_string(batch_size));
        expect_bit_identical(reference, run_grid(*cuda_, spec, batch_size));
    }
}

INSTANTIATE_TEST_SUITE_P(PrecisionAndMethod, CudaBatchInvariance,
                         ::testing::Combine(::testing::Values(Precision::float32, Precision::float64),
                                            ::testing::Values(IntegratorMethod::gd, IntegratorMethod::rk4)));

TEST_F(CudaBackendTest, RepeatedRunsOnOneBackendAreBitIdentical) {
    // Buffers are reused across batches; stale contents must not leak in.
    const SweepSpec wide = mixed_spec(Precision::float64, IntegratorMethod::rk4);
    const SweepSpec narrow = mixed_spec(Precision::float64, IntegratorMethod::gd);
    const auto first = run_grid(*cuda_, narrow, 64);
    run_grid(*cuda_, wide, 64);
    expect_bit_identical(first, run_grid(*cuda_, narrow, 5));
}

} // namespace
} // namespace collapse::testing
