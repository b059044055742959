// CUDA builds only, no device needed: how runtime failures become
// BackendErrors, the COLLAPSE_CUDA_* switches, and the launch shape of the
// trajectory kernel.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "cuda_check.hpp"
#include "environment_choice.hpp"
#include "trajectory_kernel.hpp"

namespace collapse::cuda {
namespace {

TEST(CudaErrors, FailureBecomesBackendErrorWithNameTextAndCallSite) {
    try {
        COLLAPSE_CUDA_CHECK(cudaErrorInvalidValue);
        FAIL() << "no exception";
    } catch (const BackendError& error) {
        const std::string message = error.what();
        EXPECT_NE(message.find("cudaErrorInvalidValue"), std::string::npos) << message;
        EXPECT_NE(message.find("invalid argument"), std::string::npos) << message;
        EXPECT_NE(message.find("test_cuda_errors.cpp:"), std::string::npos) << message;
    }
}

TEST(CudaErrors, SuccessPassesSilently) { EXPECT_NO_THROW(COLLAPSE_CUDA_CHECK(cudaSuccess)); }

TEST(TrajectoryKernelLaunch, CoversEveryTrajectoryAndSpreadsSmallBatches) {
    for (std::int64_t count : {1, 7, 31, 1024, 4096, 67584, 100001}) {
        const LaunchShape shape = choose_launch_shape(count, 132);
        SCOPED_TRACE("count " + std::to_string(count));
        EXPECT_GE(static_cast<std::int64_t>(shape.blocks) * shape.threads_per_block, count);
        EXPECT_LT(static_cast<std::int64_t>(shape.blocks - 1) * shape.threads_per_block, count);
        EXPECT_EQ(shape.threads_per_block % 32, 0);
    }
    EXPECT_EQ(choose_launch_shape(1024, 132).threads_per_block, 32);   // 32 blocks rather than 8
    EXPECT_EQ(choose_launch_shape(67584, 132).threads_per_block, 128); // the default batch size
}

TEST(EnvironmentChoice, UnsetOrEmptyIsTheDefaultAndAValueItsIndex) {
    const char* variable = "COLLAPSE_TEST_SWITCH";
    ::unsetenv(variable);
    EXPECT_EQ(environment_choice(variable, {"auto", "thread", "team"}), 0u);
    ::setenv(variable, "", 1);
    EXPECT_EQ(environment_choice(variable, {"auto", "thread", "team"}), 0u);
    ::setenv(variable, "team", 1);
    EXPECT_EQ(environment_choice(variable, {"auto", "thread", "team"}), 2u);
    ::setenv(variable, "Team", 1);
    try {
        environment_choice(variable, {"auto", "thread", "team"});
        ADD_FAILURE() << "an unlisted value was accepted";
    } catch (const BackendError& error) {
        EXPECT_EQ(std::string(error.what()), "COLLAPSE_TEST_SWITCH must be auto, thread or team, not 'Team'");
    }
    ::setenv(variable, "x", 1);
    try {
        environment_choice(variable, {"device", "host"});
        ADD_FAILURE() << "an unlisted value was accepted";
    } catch (const BackendError& error) {
        EXPECT_EQ(std::string(error.what()), "COLLAPSE_TEST_SWITCH must be device or host, not 'x'");
    }
    ::unsetenv(variable);
}

} // namespace
} // namespace collapse::cuda
