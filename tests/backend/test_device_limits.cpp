// Launch plans from the device's own limits (kernels/device_limits.hpp), for
// the parts researchers run on: the A40/L40S's 99 KiB, the A100's 163 KiB and
// the H100's 227 KiB of opt-in shared memory per block. Also the one-tenant
// rule for device memory and the cuBLAS search list. No device needed.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "batch_plan.hpp"
#include "collapse/lockstep/lockstep_layout.hpp"
#include "device_limits.hpp"
#include "device_memory_tenancy.hpp"
#include "lockstep/cublas_search.hpp"
#include "team_kernel.hpp"

namespace collapse::testing {
namespace {

using cuda::DeviceLimits;

constexpr std::size_t kib = 1024;

TEST(DeviceLimits, PresetsCarryTheDatasheetSharedMemory) {
    EXPECT_EQ(DeviceLimits::sm86_a40().shared_bytes_per_block_optin, 99 * kib);
    EXPECT_EQ(DeviceLimits::sm89_l40s().shared_bytes_per_block_optin, 99 * kib);
    EXPECT_EQ(DeviceLimits::sm80_a100().shared_bytes_per_block_optin, 163 * kib);
    EXPECT_EQ(DeviceLimits::sm90_h100().shared_bytes_per_block_optin, 227 * kib);
    EXPECT_EQ(DeviceLimits::sm86_a40().max_threads_per_multiprocessor, 1536);
    EXPECT_EQ(DeviceLimits::sm90_h100().multiprocessors, 132);
}

// The medium shape: K = 10, N = 1000, d = h = 32.
const TrajectoryDims medium{10, 1000, 32, 32, 0};

// Bytes of the team plan written out by hand from TeamWorkspaceLayout: W, G,
// W^T (d^2 each), W y_k, CS_k, W CS_k, R2_k (K d each), one double per thread.
std::size_t resident_bytes(const TrajectoryDims& dims, std::size_t real_bytes) {
    const std::size_t d = dims.dim, k = dims.classes;
    return 256 * sizeof(double) + (3 * d * d + 4 * k * d) * real_bytes;
}
std::size_t state_bytes(const TrajectoryDims& dims, std::size_t real_bytes) {
    const std::size_t d = dims.dim, n = dims.samples, k = dims.classes, h = dims.head_dim;
    return (n * d + k * d + 2 * h * d) * real_bytes;
}

template <class Real>
cuda::TeamLaunchPlan plan_for(const TrajectoryDims& dims, const DeviceLimits& limits) {
    cuda::TrajectoryTask<Real> task;
    task.dims = dims;
    return cuda::plan_team_launch(&task, 1, limits);
}

TEST(DeviceLimits, MediumFloat32StateSitsInSharedMemoryOnlyWhereItFits) {
    const std::size_t with_state = resident_bytes(medium, 4) + state_bytes(medium, 4); // 153.25 KiB
    ASSERT_EQ(with_state, 156928u);
    for (const DeviceLimits& roomy : {DeviceLimits::sm90_h100(), DeviceLimits::sm80_a100()}) {
        const cuda::TeamLaunchPlan plan = plan_for<float>(medium, roomy);
        EXPECT_EQ(plan.threads_per_block, 256);
        EXPECT_EQ(plan.shared_state_reals * 4, state_bytes(medium, 4));
        EXPECT_EQ(plan.shared_bytes, with_state);
        EXPECT_EQ(plan.blocks_per_multiprocessor, 1); // 228 or 164 KiB per multiprocessor
    }
    for (const DeviceLimits& small : {DeviceLimits::sm86_a40(), DeviceLimits::sm89_l40s()}) {
        const cuda::TeamLaunchPlan plan = plan_for<float>(medium, small);
        EXPECT_EQ(plan.threads_per_block, 256);
        EXPECT_EQ(plan.shared_state_reals, 0u); // 153 KiB > 99 KiB: the state streams from global memory
        EXPECT_EQ(plan.shared_bytes, resident_bytes(medium, 4));
        EXPECT_EQ(plan.blocks_per_multiprocessor, 5); // 100 KiB / (19 + 1) KiB
    }
}

TEST(DeviceLimits, Float64ResidentBuffersFitEverywhereButOccupancyFollowsTheDevice) {
    // 36 KiB resident (W, G, W^T and the label blocks in double), state in global memory.
    EXPECT_EQ(resident_bytes(medium, 8), 36864u);
    EXPECT_EQ(plan_for<double>(medium, DeviceLimits::sm90_h100()).blocks_per_multiprocessor, 6);
    EXPECT_EQ(plan_for<double>(medium, DeviceLimits::sm80_a100()).blocks_per_multiprocessor, 4);
    EXPECT_EQ(plan_for<double>(medium, DeviceLimits::sm86_a40()).blocks_per_multiprocessor, 2);
    for (const DeviceLimits& limits : {DeviceLimits::sm90_h100(), DeviceLimits::sm80_a100(), DeviceLimits::sm86_a40()})
        EXPECT_EQ(plan_for<double>(medium, limits).shared_state_reals, 0u);
}

TEST(DeviceLimits, LargeFloat64HasATeamPlanOnlyAbove99KiB) {
    const TrajectoryDims large{10, 10000, 64, 64, 0};
    ASSERT_EQ(resident_bytes(large, 8), 120832u); // 118 KiB
    EXPECT_EQ(plan_for<double>(large, DeviceLimits::sm90_h100()).threads_per_block, 256);
    EXPECT_EQ(plan_for<double>(large, DeviceLimits::sm80_a100()).threads_per_block, 256);
    EXPECT_EQ(plan_for<double>(large, DeviceLimits::sm86_a40()).threads_per_block, 0);
    EXPECT_EQ(plan_for<double>(large, DeviceLimits::sm89_l40s()).threads_per_block, 0);
    // A team larger than the device allows is no plan either.
    DeviceLimits narrow = DeviceLimits::sm90_h100();
    narrow.max_threads_per_block = 128;
    EXPECT_EQ(plan_for<double>(large, narrow).threads_per_block, 0);
}

TEST(DeviceLimits, TheLockstepSizeRuleUsesTheDevicesBlockLimit) {
    // Medium float32 (134 KiB of state) fits a block on an H100 and an A100, not on an A40 or L40S.
    const auto lockstep = [](const DeviceLimits& limits, Precision precision) {
        return lockstep::prefer_lockstep(medium, precision, IntegratorMethod::gd, limits.shared_bytes_per_block_optin);
    };
    EXPECT_FALSE(lockstep(DeviceLimits::sm90_h100(), Precision::float32));
    EXPECT_FALSE(lockstep(DeviceLimits::sm80_a100(), Precision::float32));
    EXPECT_TRUE(lockstep(DeviceLimits::sm86_a40(), Precision::float32));
    EXPECT_TRUE(lockstep(DeviceLimits::sm89_l40s(), Precision::float32));
    EXPECT_TRUE(lockstep(DeviceLimits::sm80_a100(), Precision::float64)); // 268 KiB
}

TEST(DeviceLimits, BatchSizeIsFourWavesPerMultiprocessorWithinHalfTheFreeMemory) {
    cuda::BatchMemory plenty;
    plenty.free_device_bytes = std::size_t{80} << 30;
    plenty.stack_bytes_per_thread = 2048;
    plenty.device_bytes_per_trajectory = 4096;
    plenty.host_bytes = std::size_t{64} << 30;
    plenty.host_bytes_per_trajectory = 4096;
    EXPECT_EQ(cuda::plan_batch_size(DeviceLimits::sm90_h100(), plenty), 4 * 132 * 128);
    EXPECT_EQ(cuda::plan_batch_size(DeviceLimits::sm80_a100(), plenty), 4 * 108 * 128);
    EXPECT_EQ(cuda::plan_batch_size(DeviceLimits::sm86_a40(), plenty), 4 * 84 * 128);
    // 1 GiB free: half of it, less the stack of every thread the device holds at once.
    cuda::BatchMemory tight = plenty;
    tight.free_device_bytes = std::size_t{1} << 30;
    tight.device_bytes_per_trajectory = std::size_t{1} << 20;
    const auto expected = [&](const DeviceLimits& limits) {
        const std::size_t stack = 2048u * static_cast<std::size_t>(limits.multiprocessors) *
                                  static_cast<std::size_t>(limits.max_threads_per_multiprocessor);
        return static_cast<std::int64_t>(((std::size_t{1} << 29) - stack) >> 20);
    };
    EXPECT_EQ(cuda::plan_batch_size(DeviceLimits::sm80_a100(), tight), expected(DeviceLimits::sm80_a100()));
    EXPECT_EQ(cuda::plan_batch_size(DeviceLimits::sm80_a100(), tight), 80);
    EXPECT_EQ(cuda::plan_batch_size(DeviceLimits::sm86_a40(), tight), 260);
    // Nothing left: still one trajectory (the batch then fails readably if it cannot allocate).
    tight.free_device_bytes = 0;
    EXPECT_EQ(cuda::plan_batch_size(DeviceLimits::sm86_a40(), tight), 1);
}

// A grow-only pool set standing in for DeviceBatchRunner's or LockstepRunner's:
// each batch takes half of what is free when it starts, as default_batch_size plans.
struct StandInDevice {
    std::size_t total = 0, held = 0, peak_held = 0;
    std::size_t free() const { return total - held; }
};
struct StandInPools {
    StandInDevice* device;
    std::size_t bytes = 0;
    void run_batch() {
        const std::size_t wanted = device->free() / 2 + bytes; // grow-only: what it has plus half the rest
        device->held += wanted - bytes;
        bytes = wanted;
        device->peak_held = std::max(device->peak_held, device->held);
    }
    void release_device_memory() {
        device->held -= bytes;
        bytes = 0;
    }
};

TEST(DeviceMemoryTenancy, OnlyOnePathsPoolsHoldMemoryAtATime) {
    // Batches alternating between the kernels and the lockstep path, as a sweep over head widths can.
    const auto sweep = [](bool with_tenancy) {
        StandInDevice device{1000, 0, 0};
        StandInPools kernels{&device}, lockstep{&device};
        cuda::DeviceMemoryTenancy tenancy;
        for (int batch = 0; batch < 6; ++batch) {
            StandInPools& path = batch % 2 == 0 ? kernels : lockstep;
            (with_tenancy ? tenancy.hand_to(path) : path).run_batch();
            if (with_tenancy) {
                EXPECT_TRUE(kernels.bytes == 0 || lockstep.bytes == 0) << "batch " << batch;
            }
        }
        return device.peak_held;
    };
    // Without it both sets keep their half: 500 + 250, then growing towards the whole card.
    EXPECT_GT(sweep(false), 700u);
    EXPECT_EQ(sweep(true), 500u);
}

TEST(DeviceMemoryTenancy, HandingToTheHolderAgainReleasesNothing) {
    StandInDevice device{1000, 0, 0};
    StandInPools kernels{&device};
    cuda::DeviceMemoryTenancy tenancy;
    tenancy.hand_to(kernels).run_batch();
    tenancy.hand_to(kernels).run_batch();
    EXPECT_EQ(kernels.bytes, 750u); // grew, was never freed
    EXPECT_EQ(tenancy.holder(), &kernels);
}

TEST(CublasSearch, TheLoaderFirstThenTheToolkitsLibraryDirectories) {
    cuda::CublasSearchInputs inputs;
    inputs.major_version = 13;
    inputs.runtime_directory = "/opt/cuda-13.0/targets/x86_64-linux/lib/";
    inputs.cuda_home = "/sw/cuda/13.0";
    inputs.cuda_path = "/sw/cuda/13.0"; // the same toolkit twice: listed once
    inputs.build_toolkit_directory = "/usr/local/cuda/lib64";
    const std::vector<std::string> expected_directories = {
        "/opt/cuda-13.0/targets/x86_64-linux/lib", "/sw/cuda/13.0/lib64", "/sw/cuda/13.0/lib", "/usr/local/cuda/lib64"};
    EXPECT_EQ(cuda::cublas_directories(inputs), expected_directories);
    const std::vector<std::string> candidates = cuda::cublas_candidates(inputs, "libcublasLt");
    ASSERT_EQ(candidates.size(), 2 + 2 * expected_directories.size());
    EXPECT_EQ(candidates[0], "libcublasLt.so.13");
    EXPECT_EQ(candidates[1], "libcublasLt.so");
    EXPECT_EQ(candidates[2], "/opt/cuda-13.0/targets/x86_64-linux/lib/libcublasLt.so.13");
    EXPECT_EQ(candidates.back(), "/usr/local/cuda/lib64/libcublasLt.so");
    // Nothing known: still the loader and /usr/local/cuda/lib64.
    cuda::CublasSearchInputs bare;
    bare.major_version = 13;
    EXPECT_EQ(cuda::cublas_candidates(bare, "libcublasLt"),
              (std::vector<std::string>{"libcublasLt.so.13", "libcublasLt.so", "/usr/local/cuda/lib64/libcublasLt.so.13",
                                        "/usr/local/cuda/lib64/libcublasLt.so"}));
}

TEST(CublasSearch, OpensTheFirstCandidateThatLoadsAndSaysWhereItLooked) {
    int library = 0;
    std::vector<std::string> asked;
    // A machine whose loader does not know cuBLAS but whose $CUDA_HOME has it.
    const auto open = [&](const std::string& name, std::string& reason) -> void* {
        asked.push_back(name);
        if (name == "/sw/cuda/lib64/libcublasLt.so.13") return &library;
        reason = name + ": cannot open shared object file";
        return nullptr;
    };
    cuda::CublasSearchInputs inputs;
    inputs.major_version = 13;
    inputs.cuda_home = "/sw/cuda";
    const cuda::CublasOpenResult found = cuda::open_first_cublas(cuda::cublas_candidates(inputs, "libcublasLt"), open);
    EXPECT_EQ(found.handle, &library);
    EXPECT_EQ(found.opened, "/sw/cuda/lib64/libcublasLt.so.13");
    EXPECT_EQ(asked.size(), 3u); // the two bare names, then $CUDA_HOME/lib64
    ASSERT_EQ(found.tried.size(), 2u);
    EXPECT_NE(found.tried[0].find("libcublasLt.so.13: "), std::string::npos);
    // Found nowhere: every candidate tried, each with its reason.
    inputs.cuda_home.clear();
    const cuda::CublasOpenResult missing = cuda::open_first_cublas(
        cuda::cublas_candidates(inputs, "libcublasLt"), [](const std::string&, std::string& reason) -> void* {
            reason = "no such file";
            return nullptr;
        });
    EXPECT_EQ(missing.handle, nullptr);
    EXPECT_EQ(missing.tried.size(), 4u);
}

TEST(CublasSearch, ThisProcessBuildsItsListFromTheEnvironment) {
    ::setenv("CUDA_HOME", "/from/the/environment", 1);
    const cuda::CublasSearchInputs inputs = cuda::cublas_search_inputs_of_this_process();
    ::unsetenv("CUDA_HOME");
    EXPECT_EQ(inputs.cuda_home, "/from/the/environment");
    EXPECT_GE(inputs.major_version, 12);
    EXPECT_FALSE(inputs.build_toolkit_directory.empty());
    // The static runtime lives in the executable: no runtime directory from dladdr.
    EXPECT_EQ(inputs.runtime_directory, "");
}

} // namespace
} // namespace collapse::testing
