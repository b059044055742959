// The lockstep path with cuBLAS on a GPU (skips without one), against the
// CPU backend with the CUDA parity bounds: float64 within 1e-9 with equal
// statuses and steps, float32 equal statuses and collapse steps within 1%.
// Also through the backend (COLLAPSE_CUDA_LOCKSTEP=on); the CUDA Graph per
// step on and off bit-identical; the pinned cuBLASLt algorithm: every batch
// count gives the bits of count 1, and the products equal the plain-loop
// reference on exact data; cuBLAS failures as BackendError (that part runs
// without a device).
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend_test_support.hpp"
#include "batch_packing.hpp"
#include "collapse/sweep/grid.hpp"
#include "device_buffer.hpp"
#include "lockstep/cublaslt_gemm.hpp"
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
    explicit DeviceLockstepBackend(bool device_initial_states, std::int64_t lanes = 0, int poll_interval = 16,
                                   bool graph = true)
        : device_initial_states_(device_initial_states) {
        runner_.set_lanes(lanes);
        runner_.set_poll_interval(poll_interval);
        runner_.set_graph(graph);
    }
    int graph_captures() const { return runner_.graph_captures(); }
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

// SPEC §5 (bit-identical whatever the batching) asks this of cuBLAS too: the
// algorithm is pinned per product shape, so the batch count cannot change it.
TEST_F(LockstepGpu, BitIdenticalAcrossBatchSizes) {
    for (Precision precision : {Precision::float64, Precision::float32}) {
        SweepSpec spec = mixed_spec(precision, IntegratorMethod::gd);
        spec.axes[1].values = {0, 2, 8};
        DeviceLockstepBackend lockstep(true);
        const auto expected = run_grid(lockstep, spec, 1000);
        expect_bit_identical(expected, run_grid(lockstep, spec, 7));
        expect_bit_identical(expected, run_grid(lockstep, spec, 1));
    }
}

// The step captured once per batch and replayed gives the bits of the passes
// launched one by one, with refills between replays (3 lanes, polls every 5).
TEST_F(LockstepGpu, GraphOnAndOffAreBitIdentical) {
    for (Precision precision : {Precision::float64, Precision::float32}) {
        const SweepSpec spec = mixed_spec(precision, IntegratorMethod::gd);
        for (std::int64_t lanes : {std::int64_t{0}, std::int64_t{3}}) {
            SCOPED_TRACE("lanes " + std::to_string(lanes));
            DeviceLockstepBackend graph(true, lanes, 5, true), direct(true, lanes, 5, false);
            const auto expected = run_grid(direct, spec, 13);
            expect_bit_identical(expected, run_grid(graph, spec, 13));
            EXPECT_EQ(direct.graph_captures(), 0);
            EXPECT_EQ(graph.graph_captures(), static_cast<int>((Grid(spec).size() + 12) / 13)) << "one per batch";
        }
    }
}

// Strided-batched products through cuBLASLt: on small integers (exact in any
// order) they equal CpuBatchedGemm for every transpose and beta, with padded
// leading dimensions and strides; on random reals, batch element i has the
// same bits at batch counts 1, 7, 64 and 300 (the pinned algorithm).
template <class Real>
std::vector<Real> run_on_device(const cuda::CublasLtBatchedGemm& gemm, lockstep::GemmBatch<Real> g,
                                const std::vector<Real>& a, const std::vector<Real>& b, const std::vector<Real>& c) {
    cuda::DeviceBuffer<Real> da, db, dc;
    da.resize(a.size()), db.resize(b.size()), dc.resize(c.size());
    EXPECT_EQ(cudaMemcpy(da.data(), a.data(), a.size() * sizeof(Real), cudaMemcpyHostToDevice), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(db.data(), b.data(), b.size() * sizeof(Real), cudaMemcpyHostToDevice), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(dc.data(), c.data(), c.size() * sizeof(Real), cudaMemcpyHostToDevice), cudaSuccess);
    g.a = da.data(), g.b = db.data(), g.c = dc.data();
    gemm(g);
    std::vector<Real> out(c.size());
    EXPECT_EQ(cudaMemcpy(out.data(), dc.data(), c.size() * sizeof(Real), cudaMemcpyDeviceToHost), cudaSuccess);
    return out;
}

template <class Real>
void expect_pinned_products() {
    using lockstep::GemmOp;
    cuda::CublasLtBatchedGemm gemm(nullptr);
    std::mt19937 random(11);
    for (GemmOp op_a : {GemmOp::none, GemmOp::transpose})
        for (GemmOp op_b : {GemmOp::none, GemmOp::transpose})
            for (Real beta : {Real(0), Real(1)}) {
                SCOPED_TRACE("op_a " + std::to_string(int(op_a)) + " op_b " + std::to_string(int(op_b)) + " beta " +
                             std::to_string(beta));
                lockstep::GemmBatch<Real> g;
                g.op_a = op_a, g.op_b = op_b, g.m = 70, g.n = 33, g.k = 257, g.beta = beta;
                g.ld_a = op_a == GemmOp::none ? g.k + 1 : g.m + 2;
                g.ld_b = op_b == GemmOp::none ? g.n : g.k + 3;
                g.ld_c = g.n + 1;
                g.stride_a = (op_a == GemmOp::none ? g.m : g.k) * g.ld_a + 2;
                g.stride_b = (op_b == GemmOp::none ? g.k : g.n) * g.ld_b + 1;
                g.stride_c = g.m * g.ld_c + 3;
                const int largest = 300;
                std::vector<Real> a(largest * g.stride_a), b(largest * g.stride_b), c(largest * g.stride_c);
                std::uniform_int_distribution<int> small(-3, 3);
                for (auto* values : {&a, &b, &c})
                    for (Real& value : *values) value = Real(small(random));
                g.count = 5;
                std::vector<Real> expected = c;
                lockstep::GemmBatch<Real> host = g;
                host.a = a.data(), host.b = b.data(), host.c = expected.data();
                lockstep::CpuBatchedGemm{}(host);
                std::vector<Real> got = run_on_device(gemm, g, a, b, c);
                expected.resize(g.count * g.stride_c), got.resize(g.count * g.stride_c);
                EXPECT_EQ(got, expected);
                // Random reals: the first batch element's bits at every count.
                std::normal_distribution<double> normal;
                for (auto* values : {&a, &b, &c})
                    for (Real& value : *values) value = Real(normal(random));
                g.count = 1;
                const std::vector<Real> alone = run_on_device(gemm, g, a, b, c);
                for (int count : {7, 64, largest}) {
                    g.count = count;
                    const std::vector<Real> together = run_on_device(gemm, g, a, b, c);
                    EXPECT_EQ(std::memcmp(alone.data(), together.data(), g.stride_c * sizeof(Real)), 0)
                        << "batch element 0 at batch count " << count;
                }
            }
    EXPECT_EQ(gemm.pinned_shapes(), 2u * 2u * 2u) << "one algorithm per shape, whatever the count";
}

TEST_F(LockstepGpu, PinnedLtProductsAreExactAndIndependentOfTheBatchCount) {
    expect_pinned_products<double>();
    expect_pinned_products<float>();
}

// Lanes refilled from the queue on the device (thrust::copy_if with the
// CUDA policy) give the bits of one lane per trajectory.
TEST_F(LockstepGpu, LanesAreBitIdentical) {
    for (Precision precision : {Precision::float64, Precision::float32}) {
        const SweepSpec spec = mixed_spec(precision, IntegratorMethod::gd);
        const std::int64_t B = Grid(spec).size();
        DeviceLockstepBackend one_lane_each(true);
        const auto expected = run_grid(one_lane_each, spec, B);
        for (std::int64_t lanes : {std::int64_t{1}, std::int64_t{3}, std::int64_t{7}, B})
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

// Without a device, the handle or its workspace fails with a readable error.
TEST(LockstepCublasErrors, WithoutADeviceTheHandleFailsReadably) {
    std::string why;
    if (have_cuda_device(why)) GTEST_SKIP() << "a CUDA device is present";
    try {
        cuda::CublasLtBatchedGemm gemm(nullptr);
        FAIL() << "cuBLASLt made a handle and a workspace without a usable device";
    } catch (const BackendError& error) {
        const std::string message = error.what();
        const bool names_it = (message.find("cuBLAS error in") != std::string::npos &&
                               message.find("CUBLAS_STATUS_") != std::string::npos) ||
                              message.find("CUDA error in cudaMalloc") != std::string::npos;
        EXPECT_TRUE(names_it) << message;
    }
}

} // namespace
} // namespace collapse::testing
