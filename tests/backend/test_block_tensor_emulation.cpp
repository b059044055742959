// The fused block kernel's tensor-core path (FusedMath::tensor,
// model/fused_block_tensor.hpp) without a device: run_block_slot on a block
// of coroutine lanes whose warps exchange fragments for the emulated
// mma.sync (kernel_emulation.hpp, WarpFragmentExchange), against the CPU
// backend (float64 within 1e-9, float32 equal statuses and collapse steps
// within 1%), bit-identical across batch, team and tile sizes; the three
// products against the FMA micro-tiles; the warp syncs of the lane
// scheduler; the plan's switch and COLLAPSE_CUDA_TENSOR_CORES.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "backend_test_support.hpp"
#include "kernel_emulation.hpp"

namespace collapse::testing {
namespace {

// Warps sync on their own: warp 0 passes three warp syncs while warp 1
// passes one, and a warp sync shows a lane its warp-mates' writes; the
// block sync after them shows everything to everyone.
TEST(LaneSchedulerWarpSyncs, HoldOnlyTheirOwnWarp) {
    LaneScheduler scheduler;
    std::vector<int> written(64, -1), seen_in_warp(64, -1), seen_in_block(64, -1);
    scheduler.run(64, [&](int rank) {
        const int warp = rank / 32, rounds = warp == 0 ? 3 : 1;
        for (int round = 0; round < rounds; ++round) {
            written[rank] = 100 * round + rank;
            scheduler.sync_warp(rank);
            seen_in_warp[rank] = written[rank ^ 1]; // a warp-mate's value of this round
            scheduler.sync_warp(rank);
        }
        scheduler.sync(rank);
        seen_in_block[rank] = written[(rank + 32) % 64];
    });
    for (int rank = 0; rank < 64; ++rank) {
        const int last_round = rank < 32 ? 2 : 0;
        EXPECT_EQ(seen_in_warp[rank], 100 * last_round + (rank ^ 1)) << rank;
        const int other = (rank + 32) % 64;
        EXPECT_EQ(seen_in_block[rank], 100 * (other < 32 ? 2 : 0) + other) << rank;
    }
}

TEST(LaneSchedulerWarpSyncs, LanesOfOneWarpAtSyncsOfDifferentKindsAreAnError) {
    LaneScheduler scheduler;
    EXPECT_THROW(scheduler.run(32,
                               [&](int rank) {
                                   if (rank == 3) scheduler.sync(rank);
                                   else scheduler.sync_warp(rank);
                               }),
                 std::logic_error);
}

// The three products of one tile on two warps of emulated tensor cores
// against the FMA micro-tiles (fused_block.hpp) on one thread: d = 32, a
// tile of 64 samples of which 37 are real (rows past them zero, as
// load_sample_tile leaves them).
// float64: the emulated DMMA is an fma chain in k order, which may be the
// FMA micro-tiles' own chain bit for bit where the host contracts a * b + c.
template <class Real>
void expect_tile_products_agree(double tolerance) {
    constexpr int D = 32, ld = D + 1, tile_samples = 64, count = 37, first = 0, classes = 3;
    std::mt19937 random(5);
    std::normal_distribution<double> value(0.0, 1.0);
    std::vector<Real> tile(tile_samples * ld, Real(0)), residual(tile_samples * ld, Real(0)), head(D * ld);
    for (int row = 0; row < count; ++row)
        for (int c = 0; c < D; ++c) {
            tile[row * ld + c] = static_cast<Real>(value(random));
            residual[row * ld + c] = static_cast<Real>(value(random));
        }
    for (Real& w : head) w = static_cast<Real>(value(random));
    std::vector<Real> projected(classes * D);
    for (Real& p : projected) p = static_cast<Real>(value(random));
    std::vector<int> primary(count), second(count);
    for (int i = 0; i < count; ++i) {
        primary[static_cast<std::size_t>(i)] = i % classes;
        second[static_cast<std::size_t>(i)] = i % 3 == 0 ? (i + 1) % classes : -1;
    }
    ModelProblem<Real> problem;
    problem.dims = TrajectoryDims{classes, count, D, 2, 0};
    problem.inverse_pair_count = Real(0.03);
    problem.primary_label = primary.data();
    problem.second_label = second.data();

    std::vector<Real> p_fma(tile_samples * ld, Real(-7)), p_tensor = p_fma;
    std::vector<Real> next_fma(count * D, Real(-7)), next_tensor = next_fma;
    std::vector<Real> g_fma(D * D, Real(0.5)), g_tensor = g_fma;
    fused::tile_times_head_transposed<D>(SoloTeam{}, tile.data(), head.data(), p_fma.data(), tile_samples);
    fused::update_tile_samples<D>(SoloTeam{}, problem, tile.data(), residual.data(), head.data(), projected.data(),
                                  first, count, tile_samples, Real(0.5), next_fma.data());
    fused::accumulate_head_gradient<D>(SoloTeam{}, tile.data(), residual.data(), count, g_fma.data());

    constexpr int lanes = 64;
    LaneScheduler scheduler;
    std::vector<double> slots(lanes);
    std::vector<WarpFragmentExchange> exchange(lanes / 32);
    scheduler.run(lanes, [&](int rank) {
        const EmulatedBlockTeam team{rank, lanes, &scheduler, slots.data(), exchange.data()};
        fused::tile_times_head_transposed_tensor<D>(team, tile.data(), head.data(), p_tensor.data(), tile_samples);
        fused::update_tile_samples_tensor<D>(team, problem, tile.data(), residual.data(), head.data(),
                                             projected.data(), first, count, tile_samples, Real(0.5),
                                             next_tensor.data());
        fused::accumulate_head_gradient_tensor<D>(team, tile.data(), residual.data(), count, g_tensor.data());
    });
    // Errors relative to the entries' scale (sums of D or `count` products of unit normals).
    const auto expect_near = [&](const std::vector<Real>& expected, const std::vector<Real>& actual, double scale,
                                 const char* what) {
        double worst = 0;
        for (std::size_t e = 0; e < expected.size(); ++e) {
            if (expected[e] == Real(-7)) {
                EXPECT_EQ(actual[e], Real(-7)) << what << " entry " << e << " should stay untouched";
                continue;
            }
            worst = std::max(worst, std::abs(static_cast<double>(expected[e]) - static_cast<double>(actual[e])));
        }
        EXPECT_LT(worst / scale, tolerance) << what;
        if (std::is_same_v<Real, float>) {
            EXPECT_GT(worst, 0.0) << what << ": 3xTF32 should differ somewhere";
        }
    };
    expect_near(p_fma, p_tensor, std::sqrt(double(D)), "P = X W^T");
    expect_near(next_fma, next_tensor, std::sqrt(double(D)), "the updated samples");
    expect_near(g_fma, g_tensor, std::sqrt(double(count)), "G += R1^T X");
}

TEST(BlockTensorTiles, Float32ProductsMatchTheFmaMicroTiles) { expect_tile_products_agree<float>(2e-6); }
TEST(BlockTensorTiles, Float64ProductsMatchTheFmaMicroTiles) { expect_tile_products_agree<double>(1e-14); }

class BlockTensorHostEmulation : public ::testing::TestWithParam<Precision> {};

// d = 8: P and dX on the mma tiles; float32's G on the FMA micro-tiles (m = 16 > d).
TEST_P(BlockTensorHostEmulation, MatchesTheCpuBackend) {
    const Precision precision = GetParam();
    const SweepSpec spec = at_fused_kernel_dim(parity_spec(precision, IntegratorMethod::gd));
    const auto cpu = make_cpu_backend(1);
    HostEmulatedCudaBackend tensor(EmulatedKernel::block_tensor());
    const auto expected = run_grid(*cpu, spec, 64), actual = run_grid(tensor, spec, 64);
    ASSERT_FALSE(tensor.block_plans().empty());
    EXPECT_EQ(tensor.block_plans()[0].math, FusedMath::tensor);
    if (precision == Precision::float64) expect_close_results(expected, actual, 1e-9);
    else expect_same_statuses(expected, actual, 0.01);
}

INSTANTIATE_TEST_SUITE_P(Precision, BlockTensorHostEmulation, ::testing::Values(Precision::float32, Precision::float64),
                         [](const auto& param_info) {
                             return param_info.param == Precision::float32 ? "float32" : "float64";
                         });

// d = 16, 32 and 64: every product on the mma tiles in both precisions
// (float32's G too), the projected metric without early stop.
TEST(BlockTensorHostEmulation, WiderDimensionsMatchTheCpuBackend) {
    for (Precision precision : {Precision::float64, Precision::float32})
        for (int dim : {16, 32, 64}) {
            SCOPED_TRACE((precision == Precision::float64 ? "float64, d = " : "float32, d = ") + std::to_string(dim));
            const SweepSpec spec = tensor_tile_spec(precision, dim, 150);
            const auto cpu = make_cpu_backend(1);
            HostEmulatedCudaBackend tensor(EmulatedKernel::block_tensor());
            const auto expected = run_grid(*cpu, spec, 64), actual = run_grid(tensor, spec, 64);
            if (precision == Precision::float64) expect_close_results(expected, actual, 1e-9);
            else expect_same_statuses(expected, actual, 0.01);
            EXPECT_EQ(tensor.block_plans().at(0).dim, dim);
        }
}

// SPEC §5 within the tensor path: batch size, block order, team size (one
// warp or two) and tile size change no bit. mixed_spec's lr 0.3 is chaotic
// with a head: any change of instruction sequence would show. d = 16 puts
// float32's G on the mma tiles too.
TEST(BlockTensorHostEmulation, BitIdenticalAcrossBatchesTeamAndTileSizes) {
    for (Precision precision : {Precision::float64, Precision::float32})
        for (int dim : {8, 16}) {
            SCOPED_TRACE((precision == Precision::float64 ? "float64, d = " : "float32, d = ") + std::to_string(dim));
            SweepSpec spec = at_fused_kernel_dim(mixed_spec(precision, IntegratorMethod::gd));
            spec.shape.dim = dim;
            spec.axes[1].values = {3};
            spec.integrator.max_steps = 200;
            HostEmulatedCudaBackend planned(EmulatedKernel::block_tensor());
            const auto expected = run_grid(planned, spec, 64);
            EXPECT_EQ(planned.block_plans().at(0).tile_samples, 32);
            expect_bit_identical(expected, run_grid(planned, spec, 7));
            HostEmulatedCudaBackend two_warps(EmulatedKernel::block_tensor(64));
            expect_bit_identical(expected, run_grid(two_warps, spec, 13));
            HostEmulatedCudaBackend larger_tile(EmulatedKernel::block_tensor(32, 64));
            expect_bit_identical(expected, run_grid(larger_tile, spec, 64));
            if (precision == Precision::float32) { // ... another path than the FMA micro-tiles (see above for float64)
                HostEmulatedCudaBackend fma(EmulatedKernel::block());
                const auto fma_results = run_grid(fma, spec, 64);
                bool differs = false;
                for (const auto& [flat, output] : expected)
                    differs = differs || output.final_sample_embeddings != fma_results.at(flat).final_sample_embeddings;
                EXPECT_TRUE(differs);
            }
        }
}

TEST(BlockLaunchPlan, TensorCoresWhereTheDeviceHasThem) {
    cuda::TrajectoryTask<float> task;
    task.dims = TrajectoryDims{10, 1000, 32, 32, 0};
    const cuda::DeviceLimits a100 = cuda::DeviceLimits::sm80_a100(), h100 = cuda::DeviceLimits::sm90_h100();
    cuda::DeviceLimits turing = a100;
    turing.compute_major = 7;
    turing.compute_minor = 5;
    EXPECT_EQ(cuda::plan_block_launch(&task, 1, IntegratorMethod::gd, h100).math, FusedMath::fma);
    const cuda::BlockLaunchPlan tensor = cuda::plan_block_launch(&task, 1, IntegratorMethod::gd, h100, FusedMath::tensor);
    EXPECT_EQ(tensor.math, FusedMath::tensor);
    // The tiles live in registers: the same tile and shared memory as the FMA path.
    const cuda::BlockLaunchPlan fma = cuda::plan_block_launch(&task, 1, IntegratorMethod::gd, h100);
    EXPECT_EQ(tensor.tile_samples, fma.tile_samples);
    EXPECT_EQ(tensor.shared_bytes, fma.shared_bytes);
    EXPECT_EQ(cuda::plan_block_launch(&task, 1, IntegratorMethod::gd, a100, FusedMath::tensor).math, FusedMath::tensor);
    EXPECT_EQ(cuda::plan_block_launch(&task, 1, IntegratorMethod::gd, turing, FusedMath::tensor).math, FusedMath::fma);
}

TEST(BlockLaunchPlan, TensorCoresSwitchFromTheEnvironment) {
    ::unsetenv("COLLAPSE_CUDA_TENSOR_CORES");
    EXPECT_EQ(cuda::fused_math_from_environment(), FusedMath::fma);
    ::setenv("COLLAPSE_CUDA_TENSOR_CORES", "on", 1);
    EXPECT_EQ(cuda::fused_math_from_environment(), FusedMath::tensor);
    ::setenv("COLLAPSE_CUDA_TENSOR_CORES", "off", 1);
    EXPECT_EQ(cuda::fused_math_from_environment(), FusedMath::fma);
    ::setenv("COLLAPSE_CUDA_TENSOR_CORES", "yes", 1);
    try {
        cuda::fused_math_from_environment();
        ADD_FAILURE() << "COLLAPSE_CUDA_TENSOR_CORES=yes was accepted";
    } catch (const BackendError& error) {
        EXPECT_EQ(std::string(error.what()), "COLLAPSE_CUDA_TENSOR_CORES must be off or on, not 'yes'");
    }
    ::unsetenv("COLLAPSE_CUDA_TENSOR_CORES");
}

} // namespace
} // namespace collapse::testing
