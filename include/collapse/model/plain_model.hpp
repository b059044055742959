// The plain model (h = 0), SPEC §1 and §8: a sparse linear update, one pass
// over the samples plus K label sums.
//
//   L = (1/M) sum_D 1/2 ||x_i - y_k||^2
//   dL/dx_i = (1/M) sum_{k in labels(i)} (x_i - y_k)
//   dL/dy_k = (1/M) (|S_k| y_k - sum_{i in S_k} x_i)
#pragma once

#include "collapse/model/hd.hpp"
#include "collapse/model/layout.hpp"
#include "collapse/model/model_problem.hpp"
#include "collapse/model/nearest_label.hpp"
#include "collapse/model/row_kernels.hpp"

namespace collapse::detail {

// `label_sample_sum` (K*d) and `labels_transposed` (d * padded K) are scratch.
template <class Real, int Dim>
COLLAPSE_HD inline Evaluation<Real> evaluate_plain(const ModelProblem<Real>& problem, const Real* samples, const Real* labels,
                                                   Real* sample_gradient, Real* label_gradient, Real* label_sample_sum,
                                                   Real* labels_transposed, bool with_accuracy) {
    using Shape = rows::RowShape<Real, Dim>;
    using P = typename Shape::Lanes;
    constexpr int L = Shape::lanes;
    const int dim = Dim > 0 ? Dim : problem.dims.dim, classes = problem.dims.classes;
    const int packs = Shape::pack_count(dim);
    const P scale = P::broadcast(problem.inverse_pair_count);
    for (long e = 0; e < static_cast<long>(classes) * dim; ++e) label_sample_sum[e] = 0;
    if (with_accuracy) rows::transpose_labels(labels, classes, dim, labels_transposed);

    Evaluation<Real> result;
    rows::SquareSums<Real, Dim> pair_loss(dim);
    const int samples_count = problem.dims.samples;
    for (int i = 0; i < samples_count; ++i) {
        const Real* x = samples + static_cast<long>(i) * dim;
        Real* gradient = sample_gradient + static_cast<long>(i) * dim;
        const int first = problem.primary_label[i], second = problem.second_label[i];
        const int way = i % rows::SquareSums<Real, Dim>::ways;
        const Real* y_first = labels + first * dim;
        Real* sum_first = label_sample_sum + first * dim;
        simd::repeat<Shape::packs>(packs, [&](int j) {
            const P x_j = P::load(x + j * L);
            const P residual = x_j - P::load(y_first + j * L);
            pair_loss.add(way, j, residual);
            P pull = residual;
            (P::load(sum_first + j * L) + x_j).store(sum_first + j * L);
            if (second >= 0) {
                Real* sum_second = label_sample_sum + second * dim;
                const P second_residual = x_j - P::load(labels + second * dim + j * L);
                pair_loss.add(way, j, second_residual);
                pull = pull + second_residual;
                (P::load(sum_second + j * L) + x_j).store(sum_second + j * L);
            }
            (pull * scale).store(gradient + j * L);
        });
    }
    if (with_accuracy) {
        // A block of samples at a time: independent distance chains (row_kernels.hpp).
        constexpr int block = rows::accuracy_block<Real>;
        int i = 0;
        for (; i + block <= samples_count; i += block)
            result.correct += rows::count_nearest_matching<Real, block>(samples + static_cast<long>(i) * dim, dim,
                                                                        labels_transposed, classes, dim,
                                                                        problem.primary_label + i);
        for (; i < samples_count; ++i)
            result.correct += rows::count_nearest_matching<Real, 1>(samples + static_cast<long>(i) * dim, dim,
                                                                    labels_transposed, classes, dim, problem.primary_label + i);
    }
    for (int k = 0; k < classes; ++k) {
        const P degree = P::broadcast(problem.label_degree[k]);
        simd::repeat<Shape::packs>(packs, [&](int j) {
            const long e = static_cast<long>(k) * dim + j * L;
            (scale * (degree * P::load(labels + e) - P::load(label_sample_sum + e))).store(label_gradient + e);
        });
    }
    result.loss = Real(0.5) * problem.inverse_pair_count * pair_loss.total(dim);
    return result;
}

} // namespace collapse::detail
