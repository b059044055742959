// CUDA builds only, no device needed: the lockstep path for large states
// (kernels/lockstep/, docs/cuda-backend.md "Large states: lockstep cuBLAS
// path") run on the CPU, with thrust::host for the elementwise passes and
// the plain-loop CpuBatchedGemm for the products, between the CUDA backend's
// own packing and unpacking. Against the CPU backend: float64 within 1e-9,
// float32 statuses; zero-padding of the head exact; results independent of
// the batch. Also the row-major -> cuBLAS column-major argument translation
// and the size rule. What it cannot check is the cuBLAS call itself
// (test_lockstep_gpu.cpp does, on a GPU).
#include <gtest/gtest.h>

#include <thrust/execution_policy.h>
#include <thrust/for_each.h>

#include <algorithm>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <set>
#include <vector>

#include "backend_test_support.hpp"
#include "batch_packing.hpp"
#include "collapse/lockstep/batched_gemm.hpp"
#include "collapse/lockstep/lockstep_layout.hpp"
#include "collapse/sweep/grid.hpp"
#include "lockstep/lockstep_batch.hpp"

namespace collapse::testing {
namespace {

// The step as it was before the elementwise passes were fused (one pass per
// functor of lockstep_functors.hpp, in their old order), as a step launcher
// that ignores the fused step body it is given and runs this instead.
struct UnfusedStepLauncher {
    template <class Real, class StepBody>
    void operator()(const lockstep::LockstepView<Real>& v, const StepBody&) const {
        using namespace lockstep;
        using lockstep::detail::for_each_index;
        using lockstep::detail::product;
        const CpuBatchedGemm gemm;
        const auto& policy = thrust::host;
        const LockstepShape& s = v.shape;
        const std::int64_t B = s.lanes;
        const int N = s.samples, K = s.classes, d = s.dim, H = s.head;
        const GemmOp none = GemmOp::none, transpose = GemmOp::transpose;
        const std::int64_t xs = s.x_size(), ys = s.y_size(), as = s.a_size(), ws = s.w_size();
        if (H > 0) gemm(product<Real>(B, none, none, d, d, H, v.head_b, H, as, v.head_a, d, as, Real(0), v.w, d, ws));
        for_each_index(policy, B * ws, PlainHeadIdentity<Real>{v});
        gemm(product<Real>(B, none, transpose, N, d, d, v.x, d, xs, v.w, d, ws, Real(0), v.projected_x, d, xs));
        gemm(product<Real>(B, none, transpose, K, d, d, v.y, d, ys, v.w, d, ws, Real(0), v.projected_y, d, ys));
        for_each_index(policy, B * ys, ClassSums<Real>{v});
        if (H > 0) gemm(product<Real>(B, none, transpose, K, d, d, v.class_sum, d, ys, v.w, d, ws, Real(0), v.projected_sum, d, ys));
        for_each_index(policy, B * N, SampleResiduals<Real>{v});
        for_each_index(policy, B * ys, LabelResiduals<Real>{v});
        gemm(product<Real>(B, none, none, N, d, d, v.residual_x, d, xs, v.w, d, ws, Real(1), v.gradient_x, d, xs));
        gemm(product<Real>(B, none, none, K, d, d, v.residual_y, d, ys, v.w, d, ws, Real(1), v.gradient_y, d, ys));
        if (H > 0) {
            gemm(product<Real>(B, transpose, none, d, d, N, v.residual_x, d, xs, v.x, d, xs, Real(0), v.gradient_w, d, ws));
            gemm(product<Real>(B, transpose, none, d, d, K, v.residual_y, d, ys, v.y, d, ys, Real(1), v.gradient_w, d, ws));
            gemm(product<Real>(B, transpose, none, H, d, d, v.head_b, H, as, v.gradient_w, d, ws, Real(0), v.gradient_a, d, as));
            gemm(product<Real>(B, none, transpose, d, H, d, v.gradient_w, d, ws, v.head_a, d, as, Real(0), v.gradient_b, H, as));
        }
        for_each_index(policy, B, WatchStep<Real>{v});
        for_each_index(policy, B * s.state_size(), UpdateState<Real>{v});
        ++*v.loop_step;
    }
};

// A launcher that keeps the first step body it is given and replays that
// one for every later step, as a CUDA Graph captured once does: the step
// must take nothing step-dependent from the host.
struct ReplayingStepLauncher {
    std::function<void()> captured;
    int captures = 0;

    template <class Real, class StepBody>
    void operator()(const lockstep::LockstepView<Real>&, const StepBody& step_body) {
        if (!captured) {
            captured = step_body;
            ++captures;
        }
        captured();
    }
};

// Counts what one step launches on the device: a Thrust policy that counts
// its for_each passes (Thrust dispatches for_each to this overload by the
// policy's type) and a GEMM that counts products, both running on the host.
struct CountingHostPolicy : thrust::cpp::execution_policy<CountingHostPolicy> {
    std::int64_t* passes = nullptr;
};

template <class Iterator, class Function>
Iterator for_each(CountingHostPolicy& policy, Iterator first, Iterator last, Function function) {
    ++*policy.passes;
    return thrust::for_each(thrust::host, first, last, function);
}

struct CountingGemm {
    std::int64_t* products = nullptr;
    template <class Real>
    void operator()(const lockstep::GemmBatch<Real>& batch) const {
        ++*products;
        lockstep::CpuBatchedGemm{}(batch);
    }
};

// Runs lockstep_step itself (the body the device captures) with the counting policy and GEMM.
struct CountingStepLauncher {
    std::int64_t steps = 0, passes = 0, products = 0, heads = 0;

    template <class Real, class StepBody>
    void operator()(const lockstep::LockstepView<Real>& v, const StepBody&) {
        CountingHostPolicy policy;
        policy.passes = &passes;
        lockstep::lockstep_step(policy, CountingGemm{&products}, v);
        ++steps;
        heads += v.shape.head > 0 ? 1 : 0;
    }
};

enum class StepKind { fused, unfused_reference, replayed };

// A Backend whose run_batch is the CUDA backend's with the lockstep path on the host.
class HostLockstepBackend final : public HostTestBackend<HostLockstepBackend> {
public:
    explicit HostLockstepBackend(int poll_interval = 16, std::int64_t lanes = 0, StepKind kind = StepKind::fused)
        : kind_(kind) {
        options_.poll_interval = poll_interval;
        options_.lanes = lanes;
    }
    std::string name() const override { return "cuda-lockstep-host"; }

    template <class Real>
    void run_typed(const SweepSpec& spec, const Grid& grid, std::span<const std::int64_t> flat_indices,
                   BatchOutput& out) {
        cuda::HostBatch<Real> host(cuda::HostMemory::pageable);
        cuda::pack_batch(spec, grid, flat_indices, host, out);
        for (TrajectorySummary& summary : out.summary) summary = TrajectorySummary{}; // must be written
        const lockstep::CpuBatchedGemm gemm;
        std::int64_t steps = 0;
        if (kind_ == StepKind::unfused_reference)
            steps = lockstep::run_lockstep_on_host(host, spec.integrator.method, out, gemm, options_, UnfusedStepLauncher{});
        else if (kind_ == StepKind::replayed) {
            ReplayingStepLauncher replaying;
            steps = lockstep::run_lockstep_on_host(host, spec.integrator.method, out, gemm, options_, replaying);
            captures += replaying.captures;
        } else
            steps = lockstep::run_lockstep_on_host(host, spec.integrator.method, out, gemm, options_);
        longest_loop = std::max(longest_loop, steps);
        cuda::unpack_final_states(spec, host, out);
    }

private:
    lockstep::LockstepOptions options_;
    StepKind kind_;

public:
    std::int64_t longest_loop = 0; // loop steps of the longest batch run so far
    int captures = 0;              // step bodies the replaying launcher kept, over all batches
};

std::set<TrajectoryStatus> statuses_of(const std::map<std::int64_t, BatchOutput>& results) {
    std::set<TrajectoryStatus> statuses;
    for (const auto& [flat, output] : results) statuses.insert(output.summary[0].status);
    return statuses;
}

TEST(LockstepHost, Float64MatchesTheCpuBackend) {
    const SweepSpec spec = parity_spec(Precision::float64, IntegratorMethod::gd);
    const auto cpu = make_cpu_backend(1);
    HostLockstepBackend lockstep;
    const auto expected = run_grid(*cpu, spec, 64);
    EXPECT_EQ(statuses_of(expected).size(), 3u) << "the grid should have stable, collapsed and diverged trajectories";
    // One batch mixes h = 0 and 3, both stop-gradient settings, f and lr.
    expect_close_results(expected, run_grid(lockstep, spec, 144), 1e-9);
}

TEST(LockstepHost, Float32HasTheCpuStatuses) {
    const SweepSpec spec = parity_spec(Precision::float32, IntegratorMethod::gd);
    const auto cpu = make_cpu_backend(1);
    HostLockstepBackend lockstep;
    expect_same_statuses(run_grid(*cpu, spec, 64), run_grid(lockstep, spec, 64), 0.01);
}

// The projected metric without early stop: trajectories keep running past
// their collapse, and the projected distance drives the event.
TEST(LockstepHost, ProjectedMetricWithoutEarlyStopMatchesTheCpuBackend) {
    SweepSpec spec = parity_spec(Precision::float64, IntegratorMethod::gd);
    spec.collapse.metric = CollapseMetric::projected;
    spec.collapse.stop_on_collapse = false;
    spec.integrator.max_steps = 600;
    const auto cpu = make_cpu_backend(1);
    HostLockstepBackend lockstep;
    expect_close_results(run_grid(*cpu, spec, 64), run_grid(lockstep, spec, 64), 1e-9);
}

// h = 2 in a batch padded to h_max = 8 gives the bits it gives alone.
TEST(LockstepHost, ZeroPaddedHeadIsExact) {
    SweepSpec spec = mixed_spec(Precision::float64, IntegratorMethod::gd);
    spec.axes[1].values = {0, 2, 8};
    HostLockstepBackend lockstep;
    const auto together = run_grid(lockstep, spec, 1000); // every batch padded to 8
    const auto alone = run_grid(lockstep, spec, 1);       // each trajectory at its own width
    expect_bit_identical(alone, together);
}

// Batch size, composition and the polling interval change no bit.
TEST(LockstepHost, ResultsDependOnNeitherBatchNorPolling) {
    for (Precision precision : {Precision::float64, Precision::float32}) {
        const SweepSpec spec = mixed_spec(precision, IntegratorMethod::gd);
        HostLockstepBackend lockstep, every_step(1), never(0);
        const auto expected = run_grid(lockstep, spec, 64);
        expect_bit_identical(expected, run_grid(lockstep, spec, 7));
        expect_bit_identical(expected, run_grid(every_step, spec, 13));
        expect_bit_identical(expected, run_grid(never, spec, 64));
    }
}

// The fused elementwise passes write the bits of the unfused sequence, with
// and without refills, in both precisions.
TEST(LockstepHost, FusedPassesGiveTheBitsOfTheUnfusedSequence) {
    for (Precision precision : {Precision::float64, Precision::float32}) {
        SweepSpec spec = mixed_spec(precision, IntegratorMethod::gd);
        spec.axes[1].values = {0, 2, 8};
        const std::int64_t B = Grid(spec).size();
        for (std::int64_t lanes : {std::int64_t{0}, std::int64_t{5}}) {
            SCOPED_TRACE("lanes " + std::to_string(lanes));
            HostLockstepBackend fused(3, lanes), unfused(3, lanes, StepKind::unfused_reference);
            const auto expected = run_grid(unfused, spec, B);
            EXPECT_EQ(statuses_of(expected).size(), 3u);
            expect_bit_identical(expected, run_grid(fused, spec, B));
        }
    }
}

// One step body, kept from the first step and replayed (what the CUDA Graph
// does), gives the bits of a step body made afresh each step: the loop step
// comes from device memory, not from the host.
TEST(LockstepHost, ReplayingTheFirstStepBodyChangesNoBit) {
    const SweepSpec spec = mixed_spec(Precision::float64, IntegratorMethod::gd);
    HostLockstepBackend direct(4, 5), replayed(4, 5, StepKind::replayed);
    const auto expected = run_grid(direct, spec, 13);
    expect_bit_identical(expected, run_grid(replayed, spec, 13));
    EXPECT_EQ(replayed.captures, static_cast<int>((Grid(spec).size() + 12) / 13)) << "one capture per batch";
}

// What docs/cuda-backend.md says a step launches: 4 passes, and 10 products
// with a head in the batch, 4 without (counted through the step body itself).
TEST(LockstepHost, AStepIsFourPassesAndTenOrFourProducts) {
    for (int head : {0, 3}) {
        SCOPED_TRACE("head " + std::to_string(head));
        SweepSpec spec = mixed_spec(Precision::float64, IntegratorMethod::gd);
        spec.axes[1].values = {static_cast<double>(head)};
        const Grid grid(spec);
        std::vector<std::int64_t> flat(static_cast<std::size_t>(grid.size()));
        std::iota(flat.begin(), flat.end(), std::int64_t{0});
        cuda::HostBatch<double> host(cuda::HostMemory::pageable);
        BatchOutput out;
        cuda::pack_batch(spec, grid, flat, host, out);
        CountingStepLauncher counting;
        const std::int64_t loop_steps =
            lockstep::run_lockstep_on_host(host, spec.integrator.method, out, lockstep::CpuBatchedGemm{}, {}, counting);
        ASSERT_GT(counting.steps, 0);
        EXPECT_EQ(counting.steps, loop_steps + 1) << "steps 0 .. the last loop step";
        EXPECT_EQ(counting.heads, head > 0 ? counting.steps : 0);
        EXPECT_EQ(counting.passes, 4 * counting.steps);
        EXPECT_EQ(counting.products, (head > 0 ? 10 : 4) * counting.steps);
    }
}

// Lanes: the 72 trajectories of one batch on L lanes, freed lanes refilled
// from the queue at each poll, give the bits of one lane per trajectory.
// The grid's trajectories stop at very different steps (lr 2.5 diverges
// within a few steps, f = 0.5 collapses mid-run, others run to max_steps),
// so lanes are refilled while others still run.
TEST(LockstepHost, LanesAreRefilledWithoutChangingABit) {
    for (Precision precision : {Precision::float64, Precision::float32}) {
        const SweepSpec spec = mixed_spec(precision, IntegratorMethod::gd);
        const std::int64_t B = Grid(spec).size();
        HostLockstepBackend one_lane_each;
        const auto expected = run_grid(one_lane_each, spec, B);
        ASSERT_EQ(static_cast<std::int64_t>(expected.size()), B);
        EXPECT_EQ(one_lane_each.longest_loop, spec.integrator.max_steps);
        std::set<std::int64_t> final_steps;
        for (const auto& [flat, output] : expected) final_steps.insert(output.summary[0].final_step);
        EXPECT_EQ(statuses_of(expected).size(), 3u);
        EXPECT_GE(final_steps.size(), 5u) << "trajectories should stop at many different steps";
        EXPECT_LT(*final_steps.begin(), 20) << "some trajectory should diverge early";
        EXPECT_EQ(*final_steps.rbegin(), spec.integrator.max_steps);
        for (std::int64_t lanes : {std::int64_t{1}, std::int64_t{3}, std::int64_t{7}, B}) {
            for (int poll : {1, 5}) {
                SCOPED_TRACE("lanes " + std::to_string(lanes) + ", poll every " + std::to_string(poll));
                HostLockstepBackend lockstep(poll, lanes);
                expect_bit_identical(expected, run_grid(lockstep, spec, B));
                // With fewer lanes than trajectories, refilled lanes run past max_steps of the loop.
                if (lanes < B) {
                    EXPECT_GT(lockstep.longest_loop, spec.integrator.max_steps);
                }
            }
        }
        // Lanes with batches smaller than the grid, and a batch smaller than the lanes asked for.
        HostLockstepBackend three_lanes(5, 3), many_lanes(1, 100);
        expect_bit_identical(expected, run_grid(three_lanes, spec, 13));
        expect_bit_identical(expected, run_grid(many_lanes, spec, 7));
    }
}

// On fewer lanes than trajectories, still the CPU backend's results.
TEST(LockstepHost, LanesMatchTheCpuBackend) {
    const auto cpu = make_cpu_backend(1);
    const SweepSpec spec = parity_spec(Precision::float64, IntegratorMethod::gd);
    const auto expected = run_grid(*cpu, spec, 64);
    HostLockstepBackend lanes(5, 3);
    expect_close_results(expected, run_grid(lanes, spec, 144), 1e-9);
    const SweepSpec single = parity_spec(Precision::float32, IntegratorMethod::gd);
    HostLockstepBackend lane(1, 1);
    expect_same_statuses(run_grid(*cpu, single, 64), run_grid(lane, single, 144), 0.01);
}

TEST(LockstepHost, RefusesWhatItDoesNotRun) {
    const SweepSpec spec = teacher_student_spec(Precision::float64);
    const Grid grid(spec);
    const std::vector<std::int64_t> flat = {0, 1};
    cuda::HostBatch<double> host(cuda::HostMemory::pageable);
    BatchOutput out;
    cuda::pack_batch(spec, grid, flat, host, out);
    EXPECT_FALSE(lockstep::lockstep_supports(host, IntegratorMethod::gd));
    EXPECT_THROW(lockstep::run_lockstep_on_host(host, IntegratorMethod::gd, out), std::invalid_argument);
}

// A column-major strided-batched GEMM with cuBLAS's argument meaning.
template <class Real>
void column_major_reference(const lockstep::ColumnMajorGemm<Real>& g) {
    for (int i = 0; i < g.count; ++i)
        for (int row = 0; row < g.m; ++row)
            for (int col = 0; col < g.n; ++col) {
                Real sum = 0;
                for (int p = 0; p < g.k; ++p) {
                    const Real* a = g.first + i * g.stride_first;
                    const Real* b = g.second + i * g.stride_second;
                    const Real a_value = g.transpose_first ? a[p + row * g.ld_first] : a[row + p * g.ld_first];
                    const Real b_value = g.transpose_second ? b[col + p * g.ld_second] : b[p + col * g.ld_second];
                    sum += a_value * b_value;
                }
                Real& out = g.c[i * g.stride_c + row + col * g.ld_c];
                out = g.beta == Real(0) ? g.alpha * sum : g.alpha * sum + g.beta * out;
            }
}

// cublasLtMatmul as its descriptors say, column-major: D = alpha op(A) op(B)
// + beta C over the layouts' batch, every element addressed through its
// layout's leading dimension and batch stride. The layouts must agree.
template <class Real>
void lt_reference(const lockstep::LtMatmul<Real>& g) {
    const int m = g.c.rows, n = g.c.columns, k = g.transpose_a ? g.a.rows : g.a.columns;
    ASSERT_EQ(g.transpose_a ? g.a.columns : g.a.rows, m);
    ASSERT_EQ(g.transpose_b ? g.b.columns : g.b.rows, k);
    ASSERT_EQ(g.transpose_b ? g.b.rows : g.b.columns, n);
    ASSERT_EQ(g.a.batch_count, g.c.batch_count);
    ASSERT_EQ(g.b.batch_count, g.c.batch_count);
    for (const lockstep::LtMatrixLayout* layout : {&g.a, &g.b, &g.c}) ASSERT_GE(layout->ld, layout->rows);
    for (int i = 0; i < g.c.batch_count; ++i)
        for (int row = 0; row < m; ++row)
            for (int col = 0; col < n; ++col) {
                const Real* a = g.a_data + i * g.a.batch_stride;
                const Real* b = g.b_data + i * g.b.batch_stride;
                Real sum = 0;
                for (int p = 0; p < k; ++p) {
                    const Real a_value = g.transpose_a ? a[p + row * g.a.ld] : a[row + p * g.a.ld];
                    const Real b_value = g.transpose_b ? b[col + p * g.b.ld] : b[p + col * g.b.ld];
                    sum += a_value * b_value;
                }
                Real& out = g.c_data[i * g.c.batch_stride + row + col * g.c.ld];
                out = g.beta == Real(0) ? g.alpha * sum : g.alpha * sum + g.beta * out;
            }
}

// The translation handed to cuBLAS computes what the row-major reference does.
TEST(LockstepGemm, ColumnMajorAndLtTranslationsMatchTheRowMajorReference) {
    std::mt19937 random(7);
    std::uniform_int_distribution<int> small(-3, 3);
    auto fill = [&](std::vector<double>& values) {
        for (double& value : values) value = small(random);
    };
    using lockstep::GemmOp;
    for (GemmOp op_a : {GemmOp::none, GemmOp::transpose})
        for (GemmOp op_b : {GemmOp::none, GemmOp::transpose})
            for (double beta : {0.0, 1.0}) {
                const int m = 3, n = 5, k = 4, count = 3;
                lockstep::GemmBatch<double> g;
                g.op_a = op_a, g.op_b = op_b, g.m = m, g.n = n, g.k = k, g.alpha = 0.5, g.beta = beta, g.count = count;
                g.ld_a = op_a == GemmOp::none ? k + 1 : m + 2; // padded rows
                g.ld_b = op_b == GemmOp::none ? n : k + 3;
                g.ld_c = n + 1;
                g.stride_a = (op_a == GemmOp::none ? m : k) * g.ld_a + 2;
                g.stride_b = (op_b == GemmOp::none ? k : n) * g.ld_b + 1;
                g.stride_c = m * g.ld_c + 3;
                std::vector<double> a(static_cast<std::size_t>(count * g.stride_a)),
                    b(static_cast<std::size_t>(count * g.stride_b)), c(static_cast<std::size_t>(count * g.stride_c));
                fill(a), fill(b), fill(c);
                std::vector<double> c_column_major = c, c_lt = c;
                g.a = a.data(), g.b = b.data(), g.c = c.data();
                lockstep::CpuBatchedGemm{}(g);
                lockstep::GemmBatch<double> h = g;
                h.c = c_column_major.data();
                column_major_reference(lockstep::to_column_major(h));
                EXPECT_EQ(c, c_column_major) << "op_a " << int(op_a) << " op_b " << int(op_b) << " beta " << beta;
                h.c = c_lt.data();
                lt_reference(lockstep::to_lt_matmul(h));
                EXPECT_EQ(c, c_lt) << "cublasLtMatmul layouts: op_a " << int(op_a) << " op_b " << int(op_b)
                                   << " beta " << beta;
            }
}

TEST(LockstepSelection, LargeStatesTakeTheLockstepPath) {
    const std::size_t h100_block = 227 * 1024;
    const TrajectoryDims large{10, 10000, 64, 64, 0};
    EXPECT_TRUE(lockstep::prefer_lockstep(large, Precision::float32, IntegratorMethod::gd, h100_block));
    // Medium (K = 10, N = 1000, d = h = 32): 134 KiB in float32 fits, 268 KiB in float64 does not.
    const TrajectoryDims medium{10, 1000, 32, 32, 0};
    EXPECT_FALSE(lockstep::prefer_lockstep(medium, Precision::float32, IntegratorMethod::gd, h100_block));
    EXPECT_TRUE(lockstep::prefer_lockstep(medium, Precision::float64, IntegratorMethod::gd, h100_block));
    EXPECT_FALSE(lockstep::prefer_lockstep(medium, Precision::float64, IntegratorMethod::gd, h100_block, 4.0));
    // Not supported there: rk4 and teacher_student keep the kernels.
    EXPECT_FALSE(lockstep::prefer_lockstep(large, Precision::float32, IntegratorMethod::rk4, h100_block));
    // Memory: about five N x d blocks (X, W x_i, R1, dL/dx, the pool) per trajectory.
    const double blocks = static_cast<double>(lockstep::lockstep_bytes_per_trajectory(large, 128, sizeof(float))) /
                          (10000.0 * 64 * sizeof(float));
    EXPECT_GT(blocks, 5.0);
    EXPECT_LT(blocks, 5.2);
    const TrajectoryDims teacher{10, 10000, 64, 64, 100};
    EXPECT_FALSE(lockstep::prefer_lockstep(teacher, Precision::float32, IntegratorMethod::gd, h100_block));
}

} // namespace
} // namespace collapse::testing
