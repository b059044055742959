// The right-hand side of SPEC §1: loss and gradient of one trajectory, for the
// plain model (h = 0), the shared head with or without stop-gradient, and the
// linear teacher-student encoder. Integrators call `evaluate` and never look
// inside; both backends compile this header.
#pragma once

#include "collapse/model/hd.hpp"
#include "collapse/model/layout.hpp"
#include "collapse/model/small_matrix.hpp"

namespace collapse {

// The fixed data of one trajectory. The pair set D is stored per sample:
// (i, primary_label[i]) always, (i, second_label[i]) when second_label[i] >= 0.
template <class Real>
struct ModelProblem {
    TrajectoryDims dims;
    bool stop_gradient = false;   // ignored when h = 0: the gradients coincide
    Real inverse_pair_count = 0;  // 1 / M
    const int* primary_label = nullptr; // [N]
    const int* second_label = nullptr;  // [N], -1 = not frustrated
    const Real* label_degree = nullptr; // |S_k| [K], the number of pairs with label k
    const Real* inputs = nullptr;       // u_i [N][p], teacher_student only
};

// What one evaluation yields besides the gradient.
template <class Real>
struct Evaluation {
    Real loss = 0;
    int correct = 0; // samples whose nearest label to W x_i is c_i (when asked for)
};

namespace detail {

// Index of the label nearest to `point`; ties go to the lower index, so the
// answer is the same on every backend.
template <class Real>
COLLAPSE_HD inline int nearest_label(const Real* point, const Real* labels, int classes, int dim) {
    int best = 0;
    Real best_distance = small_matrix::squared_distance(point, labels, dim);
    for (int k = 1; k < classes; ++k) {
        const Real distance = small_matrix::squared_distance(point, labels + k * dim, dim);
        if (distance < best_distance) {
            best_distance = distance;
            best = k;
        }
    }
    return best;
}

// Plain model: L = (1/M) sum_D 1/2 ||x_i - y_k||^2.
template <class Real>
COLLAPSE_HD inline Evaluation<Real> evaluate_plain(const ModelProblem<Real>& problem, const Real* samples,
                                                   const Real* labels, Real* sample_gradient, Real* label_gradient,
                                                   Real* label_sample_sum, bool with_accuracy) {
    const int dim = problem.dims.dim, classes = problem.dims.classes;
    const Real scale = problem.inverse_pair_count;
    small_matrix::fill(label_sample_sum, Real(0), static_cast<long>(classes) * dim);
    Evaluation<Real> result;
    Real pair_loss = 0;
    for (int i = 0; i < problem.dims.samples; ++i) {
        const Real* x = samples + i * dim;
        Real* gradient = sample_gradient + i * dim;
        const int first = problem.primary_label[i], second = problem.second_label[i];
        const Real* y_first = labels + first * dim;
        pair_loss += small_matrix::squared_distance(x, y_first, dim);
        for (int c = 0; c < dim; ++c) {
            gradient[c] = x[c] - y_first[c];
            label_sample_sum[first * dim + c] += x[c];
        }
        if (second >= 0) {
            const Real* y_second = labels + second * dim;
            pair_loss += small_matrix::squared_distance(x, y_second, dim);
            for (int c = 0; c < dim; ++c) {
                gradient[c] += x[c] - y_second[c];
                label_sample_sum[second * dim + c] += x[c];
            }
        }
        for (int c = 0; c < dim; ++c) gradient[c] *= scale;
        if (with_accuracy && nearest_label(x, labels, classes, dim) == first) ++result.correct;
    }
    for (int k = 0; k < classes; ++k)
        for (int c = 0; c < dim; ++c)
            label_gradient[k * dim + c] =
                scale * (problem.label_degree[k] * labels[k * dim + c] - label_sample_sum[k * dim + c]);
    result.loss = Real(0.5) * scale * pair_loss;
    return result;
}

// Shared head W = B A, in the aggregated form of SPEC §8: per-sample and
// per-label residual sums instead of a loop over pairs.
template <class Real>
COLLAPSE_HD inline Evaluation<Real> evaluate_head(const ModelProblem<Real>& problem, const Real* samples,
                                                  const Real* labels, const Real* head_A, const Real* head_B,
                                                  Real* sample_gradient, Real* label_gradient, Real* head_A_gradient,
                                                  Real* head_B_gradient, Real* workspace, bool with_accuracy) {
    const TrajectoryDims& dims = problem.dims;
    const int dim = dims.dim, classes = dims.classes, head_dim = dims.head_dim;
    const WorkspaceLayout layout(dims);
    Real* head = workspace + layout.head;
    Real* head_gradient = workspace + layout.head_gradient;
    Real* projected_samples = workspace + layout.projected_samples;
    Real* projected_labels = workspace + layout.projected_labels;
    Real* label_sample_sum = workspace + layout.label_sample_sum;
    Real* label_projected_sum = workspace + layout.label_projected_sum;
    const Real scale = problem.inverse_pair_count;
    // Without stop-gradient each pair also pulls its target: weight 1, else 0.
    const Real target_pull = problem.stop_gradient ? Real(0) : Real(1);

    small_matrix::product(head_B, head_A, head, dim, head_dim, dim);
    small_matrix::fill(head_gradient, Real(0), static_cast<long>(dim) * dim);
    small_matrix::fill(label_sample_sum, Real(0), static_cast<long>(classes) * dim);
    small_matrix::fill(label_projected_sum, Real(0), static_cast<long>(classes) * dim);
    for (int k = 0; k < classes; ++k) small_matrix::multiply(head, labels + k * dim, projected_labels + k * dim, dim, dim);

    Evaluation<Real> result;
    Real pair_loss = 0;
    constexpr int max_dim_on_stack = 128;
    Real residual[max_dim_on_stack], target_residual[max_dim_on_stack];
    for (int i = 0; i < dims.samples; ++i) {
        const Real* x = samples + i * dim;
        Real* projected = projected_samples + i * dim;
        small_matrix::multiply(head, x, projected, dim, dim);
        const int first = problem.primary_label[i], second = problem.second_label[i];
        const int label_count = second >= 0 ? 2 : 1;
        // residual = sum_k (W x_i - y_k); target_residual = sum_k (W y_k - x_i)
        for (int c = 0; c < dim; ++c) {
            residual[c] = projected[c] - labels[first * dim + c];
            target_residual[c] = projected_labels[first * dim + c] - x[c];
            label_sample_sum[first * dim + c] += x[c];
            label_projected_sum[first * dim + c] += projected[c];
        }
        pair_loss += small_matrix::squared_distance(projected, labels + first * dim, dim) +
                     small_matrix::squared_distance(projected_labels + first * dim, x, dim);
        if (label_count == 2) {
            for (int c = 0; c < dim; ++c) {
                residual[c] += projected[c] - labels[second * dim + c];
                target_residual[c] += projected_labels[second * dim + c] - x[c];
                label_sample_sum[second * dim + c] += x[c];
                label_projected_sum[second * dim + c] += projected[c];
            }
            pair_loss += small_matrix::squared_distance(projected, labels + second * dim, dim) +
                         small_matrix::squared_distance(projected_labels + second * dim, x, dim);
        }
        Real* gradient = sample_gradient + i * dim;
        for (int c = 0; c < dim; ++c) gradient[c] = -target_pull * target_residual[c];
        small_matrix::add_transposed_product(head, residual, gradient, dim, dim);
        for (int c = 0; c < dim; ++c) gradient[c] *= scale;
        small_matrix::add_outer_product(head_gradient, residual, x, dim, dim);
        if (with_accuracy && nearest_label(projected, labels, classes, dim) == first) ++result.correct;
    }
    for (int k = 0; k < classes; ++k) {
        const Real degree = problem.label_degree[k];
        const Real* y = labels + k * dim;
        Real* gradient = label_gradient + k * dim;
        // residual = sum_i (W y_k - x_i); target_residual = sum_i (W x_i - y_k)
        for (int c = 0; c < dim; ++c) {
            residual[c] = degree * projected_labels[k * dim + c] - label_sample_sum[k * dim + c];
            gradient[c] = -target_pull * (label_projected_sum[k * dim + c] - degree * y[c]);
        }
        small_matrix::add_transposed_product(head, residual, gradient, dim, dim);
        for (int c = 0; c < dim; ++c) gradient[c] *= scale;
        small_matrix::add_outer_product(head_gradient, residual, y, dim, dim);
    }
    for (long e = 0; e < static_cast<long>(dim) * dim; ++e) head_gradient[e] *= scale;
    // dL/dA = B^T G (h x d), dL/dB = G A^T (d x h)
    for (int r = 0; r < head_dim; ++r)
        for (int c = 0; c < dim; ++c) {
            Real sum = 0;
            for (int k = 0; k < dim; ++k) sum += head_B[k * head_dim + r] * head_gradient[k * dim + c];
            head_A_gradient[r * dim + c] = sum;
        }
    for (int r = 0; r < dim; ++r)
        for (int c = 0; c < head_dim; ++c) {
            Real sum = 0;
            for (int k = 0; k < dim; ++k) sum += head_gradient[r * dim + k] * head_A[c * dim + k];
            head_B_gradient[r * head_dim + c] = sum;
        }
    result.loss = Real(0.5) * scale * pair_loss;
    return result;
}

} // namespace detail

// Loss and full gradient at `state` (layout: StateLayout). `workspace` has
// WorkspaceLayout(dims).size entries; after the call it holds W, W x_i and
// W y_k (for h > 0) and x_i (teacher_student), which the observables reuse.
template <class Real>
COLLAPSE_HD inline Evaluation<Real> evaluate(const ModelProblem<Real>& problem, const Real* state, Real* gradient,
                                             Real* workspace, bool with_accuracy) {
    const TrajectoryDims& dims = problem.dims;
    const StateLayout state_layout(dims);
    const WorkspaceLayout workspace_layout(dims);
    const int dim = dims.dim, input_dim = dims.input_dim;

    const Real* samples = state;
    Real* sample_gradient = gradient;
    if (dims.teacher_student()) {
        // x_i = E u_i, and afterwards dL/dE = sum_i dL/dx_i u_i^T.
        Real* encoded = workspace + workspace_layout.samples;
        for (int i = 0; i < dims.samples; ++i)
            small_matrix::multiply(state, problem.inputs + i * input_dim, encoded + i * dim, dim, input_dim);
        samples = encoded;
        sample_gradient = workspace + workspace_layout.sample_gradient;
    }
    const Real* labels = state + state_layout.labels;
    Real* label_gradient = gradient + state_layout.labels;

    Evaluation<Real> result =
        dims.head_dim == 0
            ? detail::evaluate_plain(problem, samples, labels, sample_gradient, label_gradient,
                                     workspace + workspace_layout.label_sample_sum, with_accuracy)
            : detail::evaluate_head(problem, samples, labels, state + state_layout.head_A, state + state_layout.head_B,
                                    sample_gradient, label_gradient, gradient + state_layout.head_A,
                                    gradient + state_layout.head_B, workspace, with_accuracy);

    if (dims.teacher_student()) {
        small_matrix::fill(gradient, Real(0), static_cast<long>(dim) * input_dim);
        for (int i = 0; i < dims.samples; ++i)
            small_matrix::add_outer_product(gradient, sample_gradient + i * dim, problem.inputs + i * input_dim, dim,
                                            input_dim);
    }
    return result;
}

} // namespace collapse
