// CUDA builds only, no device needed: what the lockstep step is made of
// (kernels/lockstep/lockstep_algorithm.hpp, docs/cuda-backend.md "Launches,
// synchronisation and the CUDA Graph" and "The pinned cuBLASLt algorithm"),
// on the host: the fused passes give the bits of the unfused sequence; the
// first step body replayed for every step (what the CUDA Graph does) gives
// the bits of a fresh one; a step launches 4 passes and 10 or 4 products;
// the row-major -> column-major and cuBLASLt layout translations compute
// what CpuBatchedGemm does.
#include <gtest/gtest.h>

#include <thrust/execution_policy.h>
#include <thrust/for_each.h>

#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "lockstep_test_support.hpp"
#include "collapse/sweep/grid.hpp"

namespace collapse::testing {
namespace {

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

} // namespace
} // namespace collapse::testing
