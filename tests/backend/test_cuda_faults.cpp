// A fault inside a kernel must surface as a BackendError that names the
// kernel and the CUDA error, never as a silently wrong result. Needs a GPU.
// A device fault poisons the CUDA context for the rest of the process, so
// each case corrupts one task on purpose and then only checks the error;
// ctest runs every test in its own process (gtest_discover_tests).
#include <gtest/gtest.h>

#include <ostream>
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

// A kernel and, for the fused block kernel, its arithmetic (FMA tiles or tensor cores).
struct FaultCase {
    cuda::KernelChoice kernel;
    FusedMath math = FusedMath::fma;
    const char* name;
};

void PrintTo(const FaultCase& fault_case, std::ostream* out) { *out << fault_case.name; }

class CudaFaults : public ::testing::TestWithParam<FaultCase> {};

TEST_P(CudaFaults, AnIllegalAddressInTheKernelBecomesABackendError) {
    const cuda::KernelChoice kernel_choice = GetParam().kernel;
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) GTEST_SKIP() << "no CUDA device";
    const cuda::DeviceLimits limits = cuda::query_device_limits(0);
    SweepSpec spec = mixed_spec(Precision::float64, IntegratorMethod::gd);
    if (kernel_choice == cuda::KernelChoice::block) spec = at_fused_kernel_dim(spec); // other d take the team kernel
    const Grid grid(spec);
    const std::vector<std::int64_t> indices{0, 1, 2, 3};
    cuda::HostBatch<double> host(cuda::HostMemory::pageable);
    BatchOutput out;
    cuda::pack_batch(spec, grid, indices, host, out);
    host.tasks[2].state_offset = std::size_t{1} << 40; // a terabyte past the state pool
    if (kernel_choice == cuda::KernelChoice::team) cuda::allow_team_shared_memory(limits.shared_bytes_per_block_optin);
    if (kernel_choice == cuda::KernelChoice::warp) cuda::allow_warp_shared_memory(limits.shared_bytes_per_block_optin);
    if (kernel_choice == cuda::KernelChoice::block) cuda::allow_block_shared_memory(limits.shared_bytes_per_block_optin);
    cuda::DeviceBatchRunner runner(limits, kernel_choice, GetParam().math);
    try {
        runner.run(host, spec.integrator.method, out);
        FAIL() << "a kernel reading far outside its pools returned normally";
    } catch (const BackendError& error) {
        const std::string message = error.what();
        const char* kernel = kernel_choice == cuda::KernelChoice::team    ? "integrate_trajectories_team"
                             : kernel_choice == cuda::KernelChoice::warp  ? "integrate_trajectories_warp"
                             : kernel_choice == cuda::KernelChoice::block ? "integrate_trajectories_block"
                                                                       : "integrate_trajectories kernel";
        EXPECT_NE(message.find(kernel), std::string::npos)
            << message;
        EXPECT_NE(message.find("cudaError"), std::string::npos) << message;
    }
    // The fault came from the arithmetic asked for (the plan takes tensor cores on sm_80 and later).
    if (kernel_choice == cuda::KernelChoice::block) {
        EXPECT_STREQ(runner.last_kernel(), GetParam().math == FusedMath::tensor ? "block-tc" : "block");
    }
}

INSTANTIATE_TEST_SUITE_P(Kernels, CudaFaults,
                         ::testing::Values(FaultCase{cuda::KernelChoice::thread, FusedMath::fma, "thread"},
                                           FaultCase{cuda::KernelChoice::team, FusedMath::fma, "team"},
                                           FaultCase{cuda::KernelChoice::warp, FusedMath::fma, "warp"},
                                           FaultCase{cuda::KernelChoice::block, FusedMath::fma, "block"},
                                           FaultCase{cuda::KernelChoice::block, FusedMath::tensor, "block_tc"}),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

} // namespace
} // namespace collapse::testing
