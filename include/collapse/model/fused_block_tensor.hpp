// The fused block step's three N x d x d products on tensor cores
// (FusedMath::tensor; docs/cuda-backend.md, "Tensor cores"): the same
// products as the register-blocked micro-GEMMs of fused_block.hpp, by warps
// that each own whole mma output blocks (16 x 8 in float32 with 3xTF32,
// 8 x 8 in float64 with DMMA; mma_tile.hpp).
//
// Determinism: an output block's instruction sequence (k ascending, the same
// fragments, the same split) does not depend on which warp takes it, on the
// team size or on the tile size: G's k is the sample index, in steps that
// start at multiples of 8 (tiles start at multiples of 32) and stop at the
// tile's last sample, rows past it being zeros in both tiles.
#pragma once

#include "collapse/model/fused_block.hpp"
#include "collapse/model/mma_tile.hpp"

namespace collapse {

// How the fused step computes P = X W^T, dX = R1 W and G += R1^T X.
enum class FusedMath {
    fma,   // register-blocked micro-GEMMs (fused_block.hpp)
    tensor // warp mma tiles: 3xTF32 in float32, DMMA in float64 (sm_80 and up)
};

namespace fused {

// The tensor tile computes G when d is a multiple of its m (16 in float32):
// at d = 8 the float32 G product stays on the FMA micro-tiles.
template <int D, class Real>
inline constexpr bool tensor_head_gradient = D % mma::WarpTile<Real>::Shape::m == 0;

struct WarpPosition {
    int lane, warp, warps;
};
template <class Team>
COLLAPSE_HD inline WarpPosition warp_position(const Team& team) {
    return WarpPosition{team.rank % mma::lanes_per_warp, team.rank / mma::lanes_per_warp,
                        team.size / mma::lanes_per_warp};
}

// out[i][a] = sum_b tile[i][b] W[a][b]: A = the tile's rows, B[b][a] = W[a][b].
template <int D, class Real, class Team>
COLLAPSE_HD inline void tile_times_head_transposed_tensor(const Team& team, const Real* tile, const Real* head,
                                                          Real* out, int tile_samples) {
    using Tile = mma::WarpTile<Real>;
    using S = typename Tile::Shape;
    constexpr int ld = FusedTiling<D>::ld, column_blocks = D / S::n;
    static_assert(D % S::n == 0 && D % S::k == 0, "d must fit the mma shape");
    const WarpPosition at = warp_position(team);
    const int blocks = (tile_samples / S::m) * column_blocks;
    for (int u = at.warp; u < blocks; u += at.warps) {
        const int row0 = (u / column_blocks) * S::m, col0 = (u % column_blocks) * S::n;
        typename Tile::Accumulator acc{};
        for (int k0 = 0; k0 < D; k0 += S::k) {
            const auto a = mma::load_a<S>(at.lane, tile + row0 * ld + k0, ld, 1);
            const auto b = mma::load_b<S>(at.lane, head + col0 * ld + k0, 1, ld);
            Tile::multiply_accumulate(team, acc, a, b);
        }
        mma::store_c<S>(at.lane, acc, out + row0 * ld + col0, ld, 1);
    }
}

// dX = R1 W (A = the residual rows, B[a][b] = W[a][b]) and, per entry of the
// accumulator, the gd update of fused::update_tile_samples. Blocks past the
// tile's last sample are skipped (warp-uniform: the block decides).
template <int D, class Real, class Team>
COLLAPSE_HD inline void update_tile_samples_tensor(const Team& team, const ModelProblem<Real>& problem,
                                                   const Real* tile, const Real* residual, const Real* head,
                                                   const Real* projected_labels, int first, int count,
                                                   int tile_samples, Real lr, Real* next_samples) {
    using Tile = mma::WarpTile<Real>;
    using S = typename Tile::Shape;
    constexpr int ld = FusedTiling<D>::ld, column_blocks = D / S::n;
    const Real scale = problem.inverse_pair_count;
    const Real pull = problem.stop_gradient ? Real(0) : Real(1);
    const WarpPosition at = warp_position(team);
    const int blocks = (tile_samples / S::m) * column_blocks;
    for (int u = at.warp; u < blocks; u += at.warps) {
        const int row0 = (u / column_blocks) * S::m, col0 = (u % column_blocks) * S::n;
        if (row0 >= count) continue;
        typename Tile::Accumulator acc{};
        for (int k0 = 0; k0 < D; k0 += S::k) {
            const auto a = mma::load_a<S>(at.lane, residual + row0 * ld + k0, ld, 1);
            const auto b = mma::load_b<S>(at.lane, head + k0 * ld + col0, ld, 1);
            Tile::multiply_accumulate(team, acc, a, b);
        }
        for (int i = 0; i < S::c_regs; ++i) {
            const int row = row0 + S::c_row(at.lane, i), b = col0 + S::c_col(at.lane, i);
            if (row >= count) continue;
            const int sample = first + row;
            next_samples[sample * D + b] =
                updated_sample_entry(projected_labels, problem.primary_label[sample], problem.second_label[sample], b,
                                     D, tile[row * ld + b], acc.reg[i], pull, scale, lr);
        }
    }
}

// G[a][b] += sum over the tile's samples of R1_i[a] x_i[b]: A[a][i] = R1_i[a]
// (the residual tile read transposed), B[i][b] = x_i[b]; the accumulator
// starts from G and goes back to it, exactly (same precision).
template <int D, class Real, class Team>
COLLAPSE_HD inline void accumulate_head_gradient_tensor(const Team& team, const Real* tile, const Real* residual,
                                                        int count, Real* head_gradient) {
    using Tile = mma::WarpTile<Real>;
    using S = typename Tile::Shape;
    constexpr int ld = FusedTiling<D>::ld, column_blocks = D / S::n;
    static_assert(tensor_head_gradient<D, Real>, "d must be a multiple of the mma's m");
    const WarpPosition at = warp_position(team);
    constexpr int blocks = (D / S::m) * column_blocks;
    for (int u = at.warp; u < blocks; u += at.warps) {
        const int a0 = (u / column_blocks) * S::m, b0 = (u % column_blocks) * S::n;
        auto acc = mma::load_c<S>(at.lane, head_gradient + a0 * D + b0, D, 1);
        for (int k0 = 0; k0 < count; k0 += S::k) {
            const auto a = mma::load_a<S>(at.lane, residual + k0 * ld + a0, 1, ld);
            const auto b = mma::load_b<S>(at.lane, tile + k0 * ld + b0, ld, 1);
            Tile::multiply_accumulate(team, acc, a, b);
        }
        mma::store_c<S>(at.lane, acc, head_gradient + a0 * D + b0, D, 1);
    }
}

// The three products of one tile, by FusedMath: P before the per-sample
// phase, dX (with the update) and G after it.
template <int D, FusedMath Math, class Real, class Team>
COLLAPSE_HD inline void tile_products_before(const Team& team, const Real* tile, const Real* head, Real* out,
                                             int tile_samples) {
    if constexpr (Math == FusedMath::tensor) tile_times_head_transposed_tensor<D>(team, tile, head, out, tile_samples);
    else tile_times_head_transposed<D>(team, tile, head, out, tile_samples);
}

template <int D, FusedMath Math, class Real, class Team>
COLLAPSE_HD inline void tile_products_after(const Team& team, const ModelProblem<Real>& problem, const Real* tile,
                                            const Real* residual, const Real* head, const Real* projected_labels,
                                            int first, int count, int tile_samples, Real lr, Real* next_samples,
                                            Real* head_gradient) {
    if constexpr (Math == FusedMath::tensor) {
        update_tile_samples_tensor<D>(team, problem, tile, residual, head, projected_labels, first, count,
                                      tile_samples, lr, next_samples);
        if constexpr (tensor_head_gradient<D, Real>)
            accumulate_head_gradient_tensor<D>(team, tile, residual, count, head_gradient);
        else accumulate_head_gradient<D>(team, tile, residual, count, head_gradient);
    } else {
        update_tile_samples<D>(team, problem, tile, residual, head, projected_labels, first, count, tile_samples, lr,
                               next_samples);
        accumulate_head_gradient<D>(team, tile, residual, count, head_gradient);
    }
}

} // namespace fused
} // namespace collapse
