// The fused block-per-trajectory step (docs/cuda-backend.md, "Fused block
// kernel"): gd on the embedding model, plain or with a head (stop-gradient
// too), with ONE pass over X per step. A block (a team, model/team.hpp) walks
// X in tiles of samples; for each tile it computes, in shared memory and
// registers, P = X W^T (register-blocked micro-GEMM), the residuals R1, the
// loss terms, the nearest label, dX = R1 W and writes x - lr dL/dx straight
// into the other X buffer, and adds the tile to the G = R1^T X and class-sum
// accumulators. After the pass: the loss reduction, the SPEC §3 decision,
// and (when the run goes on) the label and head updates.
//
// Determinism: every output entry is one chain of multiply-adds in a fixed
// order (b, a or the sample index ascending, as in team_model.hpp), owned by
// one thread at a time; the loss is 32 fixed partial sums (sample i into
// partial i mod 32) added in order. So the results depend on neither the
// team size, nor the tile size, nor the batch, nor the block order.
//
// The stop decision needs the loss, which is known only after the pass, but
// the pass already wrote the next X: X is double-buffered (the state and the
// spare buffer take turns), so a stopping step leaves the pre-update X in
// place and the final state is exactly the CPU backend's (SPEC §3).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "collapse/model/hd.hpp"
#include "collapse/model/layout.hpp"
#include "collapse/model/model_problem.hpp"
#include "collapse/model/observables.hpp"
#include "collapse/model/simd_pack.hpp"
#include "collapse/model/team.hpp"
#include "collapse/model/team_model.hpp"
#include "collapse/trajectory/runner.hpp"

namespace collapse {

// The embedding dimensions the fused step is compiled for (a template
// parameter: the micro-GEMMs unroll over it); other d take the team kernel.
COLLAPSE_HD constexpr bool fused_block_dim_supported(int dim) {
    return dim == 8 || dim == 16 || dim == 32 || dim == 64;
}

// Loss partial sums: sample i goes into partial i mod 32, whatever the tiling.
inline constexpr int fused_loss_partials = 32;

template <int D>
struct FusedTiling {
    static constexpr int ld = D + 1;                 // padded row stride: rows and columns both bank-conflict free
    static constexpr int rows = 4;                   // samples per micro-tile of X W^T and R1 W
    static constexpr int cols = 4;                   // output columns per micro-tile
    // G micro-tile, g_side x g_side entries: (D / g_side)^2 micro-tiles, 256
    // at d = 32 and 64, one per thread of a 256-thread block, so the G
    // product costs each thread what its dX micro-tiles cost (4x4 tiles at
    // d = 32 left 3/4 of the block waiting on a quarter of it).
    static constexpr int g_side = D == 64 ? 4 : 2;
};

// The SPEC §3 bookkeeping of the block, in shared memory: the leader
// observes, every thread reads the decision. Kept out of the threads'
// registers, which the micro-GEMMs need (the summary alone is 15 doubles).
struct FusedBlockWatch {
    TrajectoryWatch watch;
    int stop = 0;
};

// One block's shared memory after its `threads` doubles of reduction slots,
// in Reals of `real_bytes` each. The watch, W, G, the label rows and the two
// sample tiles; A and B stay in global memory (read once per step for
// W = B A), the label and head gradients go to the spare buffer's label/head part.
struct FusedBlockLayout {
    std::size_t watch = 0;            // FusedBlockWatch, 8-byte aligned (the area starts after the double slots)
    std::size_t head = 0;             // W, D x ld (head only)
    std::size_t head_gradient = 0;    // G accumulator, D x D (head only)
    std::size_t labels = 0;           // Y, K x D
    std::size_t projected_labels = 0; // W y_k, K x D (head only)
    std::size_t class_sums = 0;       // CS_k, K x D
    std::size_t label_residual = 0;   // R2_k, K x D (head only)
    std::size_t class_projected = 0;  // W CS_k, K x D (head only)
    std::size_t sample_loss = 0;      // per sample of the tile
    std::size_t sample_tile = 0;      // X rows of the tile, S x ld
    std::size_t residual_tile = 0;    // P, then R1 rows of the tile, S x ld
    std::size_t reals = 0;

    COLLAPSE_HD FusedBlockLayout(int classes, int dim, bool with_head, int tile_samples, std::size_t real_bytes) {
        const std::size_t ld = static_cast<std::size_t>(dim) + 1;
        const std::size_t label_block = static_cast<std::size_t>(classes) * static_cast<std::size_t>(dim);
        std::size_t next = 0;
        watch = next; next += (sizeof(FusedBlockWatch) + 7) / 8 * 8 / real_bytes;
        head = next; next += with_head ? static_cast<std::size_t>(dim) * ld : 0;
        head_gradient = next; next += with_head ? static_cast<std::size_t>(dim) * static_cast<std::size_t>(dim) : 0;
        labels = next; next += label_block;
        projected_labels = next; next += with_head ? label_block : 0;
        class_sums = next; next += label_block;
        label_residual = next; next += with_head ? label_block : 0;
        class_projected = next; next += with_head ? label_block : 0;
        sample_loss = next; next += static_cast<std::size_t>(tile_samples);
        sample_tile = next; next += static_cast<std::size_t>(tile_samples) * ld;
        residual_tile = next; next += static_cast<std::size_t>(tile_samples) * ld;
        reals = next;
    }
};

// What one block needs for one trajectory.
template <class Real>
struct FusedBlockTrajectory {
    ModelProblem<Real> problem;
    const int* class_members = nullptr; // build_class_members (team_model.hpp)
    Real* state = nullptr;  // global; the initial state on entry, the state at final_step on return
    Real* spare = nullptr;  // global, state size: the other X buffer; its label/head part takes the gradients
    Real* shared = nullptr; // FusedBlockLayout(...).reals
    int tile_samples = 0;   // a multiple of 32
    RunSettings settings;
    TrajectoryRecorder recorder;
};

namespace fused {

// Four consecutive Reals; a 16-byte (float) or 32-byte (double) vector access on the device.
template <class Real>
struct alignas(4 * sizeof(Real)) Quad {
    Real v[4];
};

template <class Real>
COLLAPSE_HD inline bool quad_aligned(const Real* pointer) {
    return reinterpret_cast<std::uintptr_t>(pointer) % sizeof(Quad<Real>) == 0;
}

template <class Real>
COLLAPSE_HD inline Quad<Real> load_quad(const Real* source) {
#if defined(__CUDA_ARCH__)
    return *reinterpret_cast<const Quad<Real>*>(source);
#else
    Quad<Real> quad;
    std::memcpy(&quad, source, sizeof quad);
    return quad;
#endif
}

template <class Real>
COLLAPSE_HD inline void store_quad(Real* target, const Quad<Real>& quad) {
#if defined(__CUDA_ARCH__)
    *reinterpret_cast<Quad<Real>*>(target) = quad;
#else
    std::memcpy(target, &quad, sizeof quad);
#endif
}

// First entry of [begin, end) (ascending) not below `value`.
COLLAPSE_HD inline const int* lower_bound(const int* begin, const int* end, int value) {
    while (begin < end) {
        const int* middle = begin + (end - begin) / 2;
        if (*middle < value) begin = middle + 1;
        else end = middle;
    }
    return begin;
}

// Rows [first, first + count) of X (row-major, D wide) into the padded tile;
// rows count..S-1 of the tile become zeros. Vector loads when the rows are aligned.
template <int D, class Real, class Team>
COLLAPSE_HD inline void load_sample_tile(const Team& team, const Real* samples, int first, int count, int tile_samples,
                                         Real* tile) {
    constexpr int ld = FusedTiling<D>::ld;
    const Real* source = samples + first * D;
    if (quad_aligned(source)) {
        for (int q = team.rank; q < tile_samples * (D / 4); q += team.size) {
            const int row = q / (D / 4), column = (q % (D / 4)) * 4;
            Quad<Real> quad{};
            if (row < count) quad = load_quad(source + row * D + column);
            for (int n = 0; n < 4; ++n) tile[row * ld + column + n] = quad.v[n];
        }
    } else {
        for (int e = team.rank; e < tile_samples * D; e += team.size) {
            const int row = e / D, column = e % D;
            tile[row * ld + column] = row < count ? source[e] : Real(0);
        }
    }
}

// The rows x cols micro-tile at (row0, col0) of rows · W (HeadTransposed:
// rows · W^T), both padded at T::ld: acc[m][n] = sum_k rows[row0+m][k] W'[k][col0+n],
// k ascending, operands in registers. The two N x d x d products of the FMA
// path (P = X W^T and R1 W) are this loop with their own epilogues.
template <int D, bool HeadTransposed, class Real>
COLLAPSE_HD inline void micro_tile_times_head(const Real* rows, const Real* head, int row0, int col0,
                                              Real (&acc)[FusedTiling<D>::rows][FusedTiling<D>::cols]) {
    using T = FusedTiling<D>;
    for (int k = 0; k < D; ++k) {
        Real r[T::rows], w[T::cols];
COLLAPSE_UNROLL
        for (int m = 0; m < T::rows; ++m) r[m] = rows[(row0 + m) * T::ld + k];
COLLAPSE_UNROLL
        for (int n = 0; n < T::cols; ++n)
            w[n] = HeadTransposed ? head[(col0 + n) * T::ld + k] : head[k * T::ld + col0 + n];
COLLAPSE_UNROLL
        for (int m = 0; m < T::rows; ++m)
COLLAPSE_UNROLL
            for (int n = 0; n < T::cols; ++n) acc[m][n] += r[m] * w[n];
    }
}

// out[i][a] = sum_b tile[i][b] W[a][b] for every row of the tile: each thread
// takes rows x cols micro-tiles, operands in registers, b ascending.
template <int D, class Real, class Team>
COLLAPSE_HD inline void tile_times_head_transposed(const Team& team, const Real* tile, const Real* head, Real* out,
                                                   int tile_samples) {
    using T = FusedTiling<D>;
    constexpr int column_groups = D / T::cols;
    const int micro_tiles = (tile_samples / T::rows) * column_groups;
    for (int u = team.rank; u < micro_tiles; u += team.size) {
        const int row0 = (u / column_groups) * T::rows, col0 = (u % column_groups) * T::cols;
        Real acc[T::rows][T::cols] = {};
        micro_tile_times_head<D, true>(tile, head, row0, col0, acc);
COLLAPSE_UNROLL
        for (int m = 0; m < T::rows; ++m)
COLLAPSE_UNROLL
            for (int n = 0; n < T::cols; ++n) out[(row0 + m) * T::ld + col0 + n] = acc[m][n];
    }
}

// Entry b of sample i after the gd step: dL/dx_i[b] = (product - (1-s) Q_i[b]) / M
// with product = (R1_i W)[b] and Q_i = W y_label - x_i (+ W y_second - x_i).
template <class Real>
COLLAPSE_HD inline Real updated_sample_entry(const Real* projected_labels, int label, int second, int b, int dim,
                                             Real x, Real product, Real pull, Real scale, Real lr) {
    Real target = projected_labels[label * dim + b] - x;
    if (second >= 0) target += projected_labels[second * dim + b] - x;
    const Real gradient = (product - pull * target) * scale;
    return x - lr * gradient;
}

// The gradient of the tile's samples, dL/dx_i[b] = (sum_a R1_i[a] W[a][b] -
// (1-s) Q_i[b]) / M, and the gd update x_i - lr dL/dx_i written to the next
// X buffer (vector stores where aligned). Same micro-tiles as above.
template <int D, class Real, class Team>
COLLAPSE_HD inline void update_tile_samples(const Team& team, const ModelProblem<Real>& problem, const Real* tile,
                                            const Real* residual, const Real* head, const Real* projected_labels,
                                            int first, int count, int tile_samples, Real lr, Real* next_samples) {
    using T = FusedTiling<D>;
    constexpr int column_groups = D / T::cols;
    const Real scale = problem.inverse_pair_count;
    const Real pull = problem.stop_gradient ? Real(0) : Real(1);
    const int micro_tiles = (tile_samples / T::rows) * column_groups;
    const bool aligned = quad_aligned(next_samples + first * D);
    for (int u = team.rank; u < micro_tiles; u += team.size) {
        const int row0 = (u / column_groups) * T::rows, col0 = (u % column_groups) * T::cols;
        if (row0 >= count) continue;
        Real acc[T::rows][T::cols] = {};
        micro_tile_times_head<D, false>(residual, head, row0, col0, acc);
COLLAPSE_UNROLL
        for (int m = 0; m < T::rows; ++m) {
            const int row = row0 + m;
            if (row >= count) break;
            const int i = first + row;
            const int label = problem.primary_label[i], second = problem.second_label[i];
            Quad<Real> updated;
COLLAPSE_UNROLL
            for (int n = 0; n < T::cols; ++n)
                updated.v[n] = updated_sample_entry(projected_labels, label, second, col0 + n, D,
                                                    tile[row * T::ld + col0 + n], acc[m][n], pull, scale, lr);
            Real* target_row = next_samples + i * D + col0;
            if (aligned) store_quad(target_row, updated);
            else
                for (int n = 0; n < T::cols; ++n) target_row[n] = updated.v[n];
        }
    }
}

// G[a][b] += sum over the tile's samples (ascending) of R1_i[a] x_i[b].
template <int D, class Real, class Team>
COLLAPSE_HD inline void accumulate_head_gradient(const Team& team, const Real* tile, const Real* residual, int count,
                                                 Real* head_gradient) {
    using T = FusedTiling<D>;
    constexpr int side = T::g_side, groups = D / side;
    for (int u = team.rank; u < groups * groups; u += team.size) {
        const int a0 = (u / groups) * side, b0 = (u % groups) * side;
        Real acc[side][side];
COLLAPSE_UNROLL
        for (int m = 0; m < side; ++m)
COLLAPSE_UNROLL
            for (int n = 0; n < side; ++n) acc[m][n] = head_gradient[(a0 + m) * D + b0 + n];
        for (int row = 0; row < count; ++row) {
            Real r[side], x[side];
COLLAPSE_UNROLL
            for (int m = 0; m < side; ++m) r[m] = residual[row * T::ld + a0 + m];
COLLAPSE_UNROLL
            for (int n = 0; n < side; ++n) x[n] = tile[row * T::ld + b0 + n];
COLLAPSE_UNROLL
            for (int m = 0; m < side; ++m)
COLLAPSE_UNROLL
                for (int n = 0; n < side; ++n) acc[m][n] += r[m] * x[n];
        }
COLLAPSE_UNROLL
        for (int m = 0; m < side; ++m)
COLLAPSE_UNROLL
            for (int n = 0; n < side; ++n) head_gradient[(a0 + m) * D + b0 + n] = acc[m][n];
    }
}

// CS_k[c] += the tile's members of class k (ascending), found by bisection
// in the class's sorted member list.
template <int D, class Real, class Team>
COLLAPSE_HD inline void accumulate_class_sums(const Team& team, const int* class_members, int classes, const Real* tile,
                                              int first, int count, Real* class_sums) {
    const int* entries = class_members + classes + 1;
    for (int e = team.rank; e < classes * D; e += team.size) {
        const int k = e / D, c = e % D;
        const int* end = entries + class_members[k + 1];
        const int* member = lower_bound(entries + class_members[k], end, first);
        Real sum = class_sums[e];
        for (; member < end && *member < first + count; ++member)
            sum += tile[(*member - first) * FusedTiling<D>::ld + c];
        class_sums[e] = sum;
    }
}

} // namespace fused
} // namespace collapse
