// The shared projection head W = B A (SPEC §1), in the aggregated form of
// SPEC §8: per-sample and per-label residual sums instead of a loop over pairs.
//
//   R1_i = sum_{k in labels(i)} (W x_i - y_k)     Q_i = sum_{k in labels(i)} (W y_k - x_i)
//   R2_k = |S_k| W y_k - sum_{i in S_k} x_i        P_k = W sum_{i in S_k} x_i - |S_k| y_k
//   dL/dx_i = (W^T R1_i - (1-s) Q_i) / M,  dL/dy_k = (W^T R2_k - (1-s) P_k) / M
//   G = (sum_i R1_i x_i^T + sum_k R2_k y_k^T) / M,  dL/dA = B^T G,  dL/dB = G A^T
//
// The three N d^2 products are done a block of samples at a time, each as
// rows of multiply-adds: W x_i = sum_b x_i[b] W^T[b,:], W^T R1_i = sum_a
// R1_i[a] W[a,:], G[a,:] += R1_i[a] x_i. One load of a W row feeds the whole
// block, whose accumulators stay in registers; the loss, the class sums and
// the nearest label for the accuracy are fused into the same pass, while the
// block's rows are in L1. P_k uses W (sum x_i) rather than sum (W x_i): one
// class sum per sample instead of two (K d^2 multiply-adds instead of N d
// read-modify-writes).
#pragma once

#include "collapse/model/hd.hpp"
#include "collapse/model/layout.hpp"
#include "collapse/model/model_problem.hpp"
#include "collapse/model/nearest_label.hpp"
#include "collapse/model/row_kernels.hpp"

namespace collapse::detail {

// Everything the sample pass reads and writes, fixed for one evaluation.
template <class Real>
struct HeadPass {
    const ModelProblem<Real>* problem;
    int dim;
    const Real* samples;
    const Real* labels;
    const Real* head;             // W, rows feed W^T R1_i
    const Real* head_transposed;  // W^T, rows feed W x_i
    const Real* projected_labels; // W y_k
    const Real* labels_transposed;
    Real* head_gradient;          // G, unscaled
    Real* label_sample_sum;
    Real* sample_gradient;
    Real target_pull; // 1 without stop-gradient, 0 with it
    bool with_accuracy;
};

// Samples [first, first + Block): gradients, their share of G, the class
// sums, the loss and the correct count.
template <class Real, int Dim, int Block>
COLLAPSE_HD COLLAPSE_INLINE void head_sample_block(const HeadPass<Real>& pass, int first, rows::SquareSums<Real, Dim>& pair_loss,
                                                   int& correct) {
    using Shape = rows::RowShape<Real, Dim>;
    using P = typename Shape::Lanes;
    constexpr int L = Shape::lanes;
    const int dim = Dim > 0 ? Dim : pass.dim;
    const int packs = Shape::pack_count(dim);
    const ModelProblem<Real>& problem = *pass.problem;
    const Real* x = pass.samples + static_cast<long>(first) * dim; // Block rows

    // 1. projections W x_i, a running sum of rows of W^T
    P sum[Block][Shape::pack_capacity];
    simd::repeat<Block>(Block, [&](int s) { simd::repeat<Shape::packs>(packs, [&](int j) { sum[s][j] = P::broadcast(Real(0)); }); });
    for (int b = 0; b < dim; ++b) {
        const Real* w_row = pass.head_transposed + b * dim;
        simd::repeat<Block>(Block, [&](int s) {
            const P weight = P::broadcast(x[s * dim + b]);
            simd::repeat<Shape::packs>(packs, [&](int j) { sum[s][j] = multiply_add(weight, P::load(w_row + j * L), sum[s][j]); });
        });
    }

    // 2. residuals, loss, class sums; sum[s] then starts the gradient: -(1-s) Q_i
    Real residual[Block][Shape::row_capacity];
    Real projected[Block][Shape::row_capacity]; // W x_i, for the accuracy once the block is done
    const P minus_pull = P::broadcast(-pass.target_pull);
    simd::repeat<Block>(Block, [&](int s) {
        const int i = first + s;
        const int label = problem.primary_label[i], second = problem.second_label[i];
        // Blocks start at multiples of Block, so the way is known at compile time when 4 divides it.
        const int way = Block % rows::SquareSums<Real, Dim>::ways == 0 ? s % rows::SquareSums<Real, Dim>::ways
                                                                        : i % rows::SquareSums<Real, Dim>::ways;
        // The second pair without a branch (which samples are frustrated is
        // data, and a mispredict flushes a block's worth of work): an
        // unfrustrated sample takes its primary label again with weight 0,
        // and its class sum goes to one of the spare rows K.. (one per sample
        // of a block, so that they form no long chain of read-modify-writes).
        const bool frustrated = second >= 0;
        const int second_label = frustrated ? second : label;
        const int second_sum_row = frustrated ? second : problem.dims.classes + (i & (rows::spare_label_rows - 1));
        const P second_weight = P::broadcast(frustrated ? Real(1) : Real(0));
        const Real* x_i = x + s * dim;
        simd::repeat<Shape::packs>(packs, [&](int j) {
            const int c = j * L;
            const P x_j = P::load(x_i + c), p_j = sum[s][j];
            const P r = p_j - P::load(pass.labels + label * dim + c);
            const P q = P::load(pass.projected_labels + label * dim + c) - x_j;
            const P r2 = second_weight * (p_j - P::load(pass.labels + second_label * dim + c));
            const P q2 = second_weight * (P::load(pass.projected_labels + second_label * dim + c) - x_j);
            pair_loss.add(way, j, r);
            pair_loss.add(way, j, q);
            pair_loss.add(way, j, r2);
            pair_loss.add(way, j, q2);
            Real* sample_sum = pass.label_sample_sum + label * dim + c;
            Real* second_sample_sum = pass.label_sample_sum + second_sum_row * dim + c;
            (P::load(sample_sum) + x_j).store(sample_sum);
            (P::load(second_sample_sum) + x_j).store(second_sample_sum);
            (r + r2).store(residual[s] + c);
            if (pass.with_accuracy) p_j.store(projected[s] + c);
            sum[s][j] = minus_pull * (q + q2);
        });
    });

    // 3. dL/dx_i = (W^T R1_i - (1-s) Q_i) / M, a running sum of rows of W
    for (int a = 0; a < dim; ++a) {
        const Real* w_row = pass.head + a * dim;
        simd::repeat<Block>(Block, [&](int s) {
            const P weight = P::broadcast(residual[s][a]);
            simd::repeat<Shape::packs>(packs, [&](int j) { sum[s][j] = multiply_add(weight, P::load(w_row + j * L), sum[s][j]); });
        });
    }
    const P scale = P::broadcast(problem.inverse_pair_count);
    simd::repeat<Block>(Block, [&](int s) {
        Real* gradient = pass.sample_gradient + static_cast<long>(first + s) * dim;
        simd::repeat<Shape::packs>(packs, [&](int j) { (sum[s][j] * scale).store(gradient + j * L); });
    });

    // 4. G[a,:] += R1_i[a] x_i, samples in order; with vector packs the
    // block's x_i stay in registers, with one-lane packs they are read in place.
    constexpr int held = Shape::lanes > 1 ? Block : 1;
    P x_lanes[held][Shape::lanes > 1 ? Shape::pack_capacity : 1];
    if constexpr (Shape::lanes > 1)
        simd::repeat<Block>(Block, [&](int s) { simd::repeat<Shape::packs>(packs, [&](int j) { x_lanes[s][j] = P::load(x + s * dim + j * L); }); });
    for (int a = 0; a < dim; ++a) {
        Real* g_row = pass.head_gradient + a * dim;
        simd::repeat<Shape::packs>(packs, [&](int j) {
            P g = P::load(g_row + j * L);
            simd::repeat<Block>(Block, [&](int s) {
                const P x_j = Shape::lanes > 1 ? x_lanes[Shape::lanes > 1 ? s : 0][Shape::lanes > 1 ? j : 0] : P::load(x + s * dim + j * L);
                g = multiply_add(P::broadcast(residual[s][a]), x_j, g);
            });
            g.store(g_row + j * L);
        });
    }

    // 5. accuracy: nearest label to each W x_i of the block
    if (pass.with_accuracy) {
        correct += rows::count_nearest_matching<Real, Block>(projected[0], Shape::row_capacity, pass.labels_transposed,
                                                             problem.dims.classes, dim, problem.primary_label + first);
    }
}

template <class Real, int Dim>
COLLAPSE_HD inline Evaluation<Real> evaluate_head(const ModelProblem<Real>& problem, const Real* samples, const Real* labels,
                                                  const Real* head_A, const Real* head_B, Real* sample_gradient,
                                                  Real* label_gradient, Real* head_A_gradient, Real* head_B_gradient,
                                                  Real* workspace, bool with_accuracy) {
    using Shape = rows::RowShape<Real, Dim>;
    using P = typename Shape::Lanes;
    constexpr int L = Shape::lanes;
    const TrajectoryDims& dims = problem.dims;
    const int dim = Dim > 0 ? Dim : dims.dim, classes = dims.classes, head_dim = dims.head_dim;
    const int packs = Shape::pack_count(dim);
    const WorkspaceLayout layout(dims);
    Real* head = workspace + layout.head;
    Real* head_transposed = workspace + layout.head_transposed;
    Real* head_gradient = workspace + layout.head_gradient;
    Real* projected_labels = workspace + layout.projected_labels;
    Real* label_sample_sum = workspace + layout.label_sample_sum;
    Real* label_projected_sum = workspace + layout.label_projected_sum;

    // W = B A: W[a,:] = sum_r B[a,r] A[r,:]; W y_k = sum_b y_k[b] W^T[b,:]
    rows::rows_times_matrix<Real, Dim>(head_B, head_dim, 1, head_A, head_dim, dim, dim, head, false);
    rows::transpose(head, dim, dim, head_transposed);
    rows::rows_times_matrix<Real, Dim>(labels, dim, 1, head_transposed, dim, classes, dim, projected_labels, false);
    for (long e = 0; e < static_cast<long>(dim) * dim; ++e) head_gradient[e] = 0;
    for (long e = 0; e < static_cast<long>(classes + rows::spare_label_rows) * dim; ++e) label_sample_sum[e] = 0; // + spare rows
    if (with_accuracy) rows::transpose_labels(labels, classes, dim, workspace + layout.labels_transposed);

    // Without stop-gradient each pair also pulls its target: weight 1, else 0.
    const HeadPass<Real> pass{&problem,        dim,          samples,          labels,         head,
                              head_transposed, projected_labels, workspace + layout.labels_transposed,
                              head_gradient,   label_sample_sum, sample_gradient,
                              problem.stop_gradient ? Real(0) : Real(1), with_accuracy};
    Evaluation<Real> result;
    rows::SquareSums<Real, Dim> pair_loss(dim);
    constexpr int block = Shape::block;
    int i = 0;
    for (; i + block <= dims.samples; i += block) head_sample_block<Real, Dim, block>(pass, i, pair_loss, result.correct);
    for (; i < dims.samples; ++i) head_sample_block<Real, Dim, 1>(pass, i, pair_loss, result.correct);

    // W sum_{i in S_k} x_i, for P_k
    rows::rows_times_matrix<Real, Dim>(label_sample_sum, dim, 1, head_transposed, dim, classes, dim, label_projected_sum,
                                       false);
    // Labels: R2_k = |S_k| W y_k - sum x_i, gradient (W^T R2_k - (1-s) P_k) / M, G += R2_k y_k^T
    const P scale = P::broadcast(problem.inverse_pair_count);
    const P minus_pull = P::broadcast(-pass.target_pull);
    Real residual[Shape::row_capacity];
    for (int k = 0; k < classes; ++k) {
        const P degree = P::broadcast(problem.label_degree[k]);
        const long row = static_cast<long>(k) * dim;
        Real* gradient = label_gradient + row;
        P sum[Shape::pack_capacity];
        simd::repeat<Shape::packs>(packs, [&](int j) {
            const long e = row + j * L;
            (degree * P::load(projected_labels + e) - P::load(label_sample_sum + e)).store(residual + j * L);
            sum[j] = minus_pull * (P::load(label_projected_sum + e) - degree * P::load(labels + e));
        });
        for (int a = 0; a < dim; ++a) {
            const P weight = P::broadcast(residual[a]);
            simd::repeat<Shape::packs>(packs, [&](int j) { sum[j] = multiply_add(weight, P::load(head + a * dim + j * L), sum[j]); });
        }
        simd::repeat<Shape::packs>(packs, [&](int j) { (sum[j] * scale).store(gradient + j * L); });
        for (int a = 0; a < dim; ++a) {
            const P weight = P::broadcast(residual[a]);
            Real* g_row = head_gradient + a * dim;
            simd::repeat<Shape::packs>(packs, [&](int j) {
                multiply_add(weight, P::load(labels + row + j * L), P::load(g_row + j * L)).store(g_row + j * L);
            });
        }
    }
    for (long e = 0; e < static_cast<long>(dim) * dim; ++e) head_gradient[e] *= problem.inverse_pair_count;

    // dL/dA = B^T G: row r = sum_k B[k,r] G[k,:]. dL/dB = G A^T, built as its
    // transpose A G^T (rows of length d), then transposed into place.
    rows::rows_times_matrix<Real, Dim>(head_B, 1, head_dim, head_gradient, dim, head_dim, dim, head_A_gradient, false);
    Real* head_gradient_transposed = workspace + layout.head_gradient_transposed;
    Real* head_B_gradient_transposed = workspace + layout.head_B_gradient_transposed;
    rows::transpose(head_gradient, dim, dim, head_gradient_transposed);
    rows::rows_times_matrix<Real, Dim>(head_A, dim, 1, head_gradient_transposed, dim, head_dim, dim, head_B_gradient_transposed,
                                       false);
    rows::transpose(head_B_gradient_transposed, head_dim, dim, head_B_gradient);
    result.loss = Real(0.5) * problem.inverse_pair_count * pair_loss.total(dim);
    return result;
}

} // namespace collapse::detail
