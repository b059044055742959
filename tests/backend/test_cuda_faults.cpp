// A fault inside a kernel must surface as a BackendError that names the
// kernel and the CUDA error, never as a silently wrong result. Needs a GPU.
// A device fault poisons the CUDA context for the rest of the process, so
// each case corrupts one task on purpose and then only checks the error;
// ctest runs every test in its own process (gtest_discover_tests).
#include <gtest/gtest.h>

#include <string>

#include "backend_test_support.hpp"
#include "batch_packing.hpp"
#include "collapse/sweep/grid.hpp"
#include "device_batch.hpp"
#include "block_kernel.hpp"
#include "team_kernel.hpp"
#include "warp_kernel.hpp"

namespace collapse::testing {
namespace {

class CudaFaults : public ::testing::TestWithParam<cuda::KernelChoice> {};

TEST_P(CudaFaults, AnIllegalAddressInTheKernelBecomesABackendError) {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) GTEST_SKIP() << "no CUDA device";
    const cuda::DeviceLimits limits = cuda::query_device_limits(0);
    SweepSpec spec = mixed_spec(Precision::float64, IntegratorMethod::gd);
    if (GetParam() == cuda::KernelChoice::block) spec = at_fused_kernel_dim(spec); // other d take the team kernel
    const Grid grid(spec);
    const std::vector<std::int64_t> indices{0, 1, 2, 3};
    cuda::HostBatch<double> host(cuda::HostMemory::pageable);
    BatchOutput out;
    cuda::pack_batch(spec, grid, indices, host, out);
    host.tasks[2].state_offset = std::size_t{1} << 40; // a terabyte past the state pool
    if (GetParam() == cuda::KernelChoice::team) cuda::allow_team_shared_memory(limits.shared_bytes_per_block_optin);
    if (GetParam() == cuda::KernelChoice::warp) cuda::allow_warp_shared_memory(limits.shared_bytes_per_block_optin);
    if (GetParam() == cuda::KernelChoice::block) cuda::allow_block_shared_memory(limits.shared_bytes_per_block_optin);
    cuda::DeviceBatchRunner runner(limits, GetParam());
    try {
        runner.run(host, spec.integrator.method, out);
        FAIL() << "a kernel reading far outside its pools returned normally";
    } catch (const BackendError& error) {
        const std::string message = error.what();
        const char* kernel = GetParam() == cuda::KernelChoice::team    ? "integrate_trajectories_team"
                             : GetParam() == cuda::KernelChoice::warp  ? "integrate_trajectories_warp"
                             : GetParam() == cuda::KernelChoice::block ? "integrate_trajectories_block"
                                                                       : "integrate_trajectories kernel";
        EXPECT_NE(message.find(kernel), std::string::npos)
            << message;
        EXPECT_NE(message.find("cudaError"), std::string::npos) << message;
    }
}

INSTANTIATE_TEST_SUITE_P(Kernels, CudaFaults,
                         ::testing::Values(cuda::KernelChoice::thread, cuda::KernelChoice::team, cuda::KernelChoice::warp,
                                           cuda::KernelChoice::block),
                         [](const auto& param_info) {
                             return param_info.param == cuda::KernelChoice::team    ? "team"
                                    : param_info.param == cuda::KernelChoice::warp  ? "warp"
                                    : param_info.param == cuda::KernelChoice::block ? "block"
                                                                                    : "thread";
                         });

} // namespace
} // namespace collapse::testing
