// The lockstep path with cuBLAS on a GPU (skips without one), against the
// CPU backend with the CUDA parity bounds: float64 within 1e-9 with equal
// statuses and steps, float32 equal statuses and collapse steps within 1%.
// Also through the backend (COLLAPSE_CUDA_LOCKSTEP=on), and cuBLAS failures
// as BackendError (that part runs without a device).
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "backend_test_support.hpp"
#include "batch_packing.hpp"
#include "collapse/sweep/grid.hpp"
#include "lockstep/cublas_gemm.hpp"
#include "lockstep/lockstep_runner.hpp"

namespace collapse::testing {
namespace {

bool have_cuda_device(std::string& why) {
    try {
        (void)make_cuda_backend();
        return true;
    } catch (const BackendError& error) {
        why = error.what();
        return false;
    }
}

// The CUDA backend's batch with LockstepRunner in place of DeviceBatchRunner.
class DeviceLockstepBackend final : public Backend {
public:
    explicit DeviceLockstepBackend(bool device_initial_states, std::int64_t lanes = 0, int poll_interval = 16)
        : device_initial_states_(device_initial_states) {
        runner_.set_lanes(lanes);
        runner_.set_poll_interval(poll_interval);
    }
    std::string name() const override { return "cuda-lockstep"; }
    std::string device_name() const override { return "gpu"; }
    std::int64_t default_batch_size(const SweepSpec&) const override { return 64; }

    void run_batch(const SweepSpec& spec, const Grid& grid, std::span<const std::int64_t> flat_indices,
                   BatchOutput& out) override {
        if (spec.integrator.precision == Precision::float32) run_typed(spec, grid, flat_indices, single_, out);
        else run_typed(spec, grid, flat_indices, double_, out);
    }

private:
    template <class Real>
    void run_typed(const SweepSpec& spec, const Grid& grid, std::span<const std::int64_t> flat_indices,
                   cuda::HostBatch<Real>& host, BatchOutput& out) {
        host.device_initial_states = device_initial_states_;
        cuda::pack_batch(spec, grid, flat_indices, host, out);
        runner_.run(host, spec.integrator.method, out);
        cuda::unpack_final_states(spec, host, out);
    }

    bool device_initial_states_;
    cuda::LockstepRunner runner_;
    cuda::HostBatch<float> single_{cuda::HostMemory::pageable};
    cuda::HostBatch<double> double_{cuda::HostMemory::pageable};
};

class LockstepGpu : public CudaBackendTest {}; // skips without a device

TEST_F(LockstepGpu, Float64MatchesTheCpuBackend) {
    const SweepSpec spec = parity_spec(Precision::float64, IntegratorMethod::gd);
    const auto cpu = make_cpu_backend(1);
    const auto expected = run_grid(*cpu, spec, 64);
    for (bool device_initial_states : {true, false}) {
        SCOPED_TRACE(device_initial_states ? "initial states made on the device" : "initial states uploaded");
        DeviceLockstepBackend lockstep(device_initial_states);
        expect_close_results(expected, run_grid(lockstep, spec, 144), 1e-9);
    }
}

TEST_F(LockstepGpu, Float32HasTheCpuStatuses) {
    const SweepSpec spec = parity_spec(Precision::float32, IntegratorMethod::gd);
    const auto cpu = make_cpu_backend(1);
    DeviceLockstepBackend lockstep(true);
    expect_same_statuses(run_grid(*cpu, spec, 64), run_grid(lockstep, spec, 64), 0.01);
}

TEST_F(LockstepGpu, ProjectedMetricWithoutEarlyStopMatchesTheCpuBackend) {
    SweepSpec spec = parity_spec(Precision::float64, IntegratorMethod::gd);
    spec.collapse.metric = CollapseMetric::projected;
    spec.collapse.stop_on_collapse = false;
    spec.integrator.max_steps = 600;
    const auto cpu = make_cpu_backend(1);
    DeviceLockstepBackend lockstep(true);
    expect_close_results(run_grid(*cpu, spec, 64), run_grid(lockstep, spec, 64), 1e-9);
}

// SPEC §5 (bit-identical whatever the batching) asks this of cuBLAS too: its
// kernel choice may depend on the batch count and the padded head width.
TEST_F(LockstepGpu, BitIdenticalAcrossBatchSizes) {
    SweepSpec spec = mixed_spec(Precision::float64, IntegratorMethod::gd);
    spec.axes[1].values = {0, 2, 8};
    DeviceLockstepBackend lockstep(true);
    const auto expected = run_grid(lockstep, spec, 1000);
    expect_bit_identical(expected, run_grid(lockstep, spec, 7));
    expect_bit_identical(expected, run_grid(lockstep, spec, 1));
}

// Lanes refilled from the queue on the device (thrust::copy_if with the
// CUDA policy) give the bits of one lane per trajectory.
TEST_F(LockstepGpu, LanesAreBitIdentical) {
    for (Precision precision : {Precision::float64, Precision::float32}) {
        const SweepSpec spec = mixed_spec(precision, IntegratorMethod::gd);
        const std::int64_t B = Grid(spec).size();
        DeviceLockstepBackend one_lane_each(true);
        const auto expected = run_grid(one_lane_each, spec, B);
        for (std::int64_t lanes : {std::int64_t{1}, std::int64_t{3}, std::int64_t{7}})
            for (int poll : {1, 5}) {
                SCOPED_TRACE("lanes " + std::to_string(lanes) + ", poll every " + std::to_string(poll));
                DeviceLockstepBackend lockstep(true, lanes, poll);
                expect_bit_identical(expected, run_grid(lockstep, spec, B));
            }
    }
}

// Through make_cuda_backend: the backend takes the lockstep path when told to.
TEST_F(LockstepGpu, BackendRunsTheLockstepPathWhenAskedTo) {
    ::setenv("COLLAPSE_CUDA_LOCKSTEP", "on", 1);
    struct Restore {
        ~Restore() { ::unsetenv("COLLAPSE_CUDA_LOCKSTEP"); }
    } restore;
    const SweepSpec spec = parity_spec(Precision::float64, IntegratorMethod::gd);
    const auto cpu = make_cpu_backend(1);
    const auto cuda = make_cuda_backend();
    expect_close_results(run_grid(*cpu, spec, 64), run_grid(*cuda, spec, 64), 1e-9);
}

TEST(LockstepCublasErrors, StatusBecomesABackendErrorNamingIt) {
    try {
        cuda::check_cublas(CUBLAS_STATUS_INVALID_VALUE, "cublasDgemmStridedBatched(...)", "here.cpp:1");
        FAIL() << "no exception";
    } catch (const BackendError& error) {
        const std::string message = error.what();
        EXPECT_NE(message.find("cuBLAS error in cublasDgemmStridedBatched(...) at here.cpp:1"), std::string::npos) << message;
        EXPECT_NE(message.find("CUBLAS_STATUS_INVALID_VALUE"), std::string::npos) << message;
    }
    EXPECT_NO_THROW(cuda::check_cublas(CUBLAS_STATUS_SUCCESS, "call", "site"));
}

TEST(LockstepCublasErrors, WithoutADeviceTheHandleFailsReadably) {
    std::string why;
    if (have_cuda_device(why)) GTEST_SKIP() << "a CUDA device is present";
    try {
        cuda::CublasBatchedGemm gemm(nullptr);
        FAIL() << "cuBLAS made a handle without a usable device";
    } catch (const BackendError& error) {
        EXPECT_NE(std::string(error.what()).find("CUBLAS_STATUS_"), std::string::npos) << error.what();
    }
}

} // namespace
} // namespace collapse::testing
