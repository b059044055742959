// The right-hand side of SPEC §1 for a team of threads (team.hpp) that
// integrates one trajectory together: the block-per-trajectory CUDA kernel.
// Same aggregated form as head_model.hpp / plain_model.hpp (SPEC §8), split
// into phases whose every output entry is independent, so the team strides
// over entries with a barrier between phases:
//
//   1. W = B A (and W^T), class sums CS_k = sum_{i in S_k} x_i   (d^2 h, N d)
//   2. W y_k, W CS_k, R2_k = |S_k| W y_k - CS_k, W x_i          (N d^2)
//   3. R1_i = sum_{k in labels(i)} (W x_i - y_k), the loss       (N d)
//   4. dL/dx_i, dL/dy_k, G, the accuracy                         (2 N d^2)
//   5. dL/dA = B^T G, dL/dB = G A^T (and dL/dE, teacher-student)
//
// Sums run in a fixed order per entry, so results do not depend on the team
// size or timing; they differ from the CPU backend's row-blocked order in the
// last bits (the parity tests bound that). "Resident" buffers are small and
// touched every phase: the kernel keeps them in shared memory. "Streamed"
// buffers are per-sample rows and live in global memory.
#pragma once

#include <cstddef>

#include "collapse/model/hd.hpp"
#include "collapse/model/layout.hpp"
#include "collapse/model/model_problem.hpp"
#include "collapse/model/small_matrix.hpp"
#include "collapse/model/team.hpp"

namespace collapse {

struct TeamWorkspaceLayout {
    std::size_t head = 0, head_gradient = 0;           // W, G: d*d
    std::size_t head_transposed = 0;                   // W^T: d*d, for products whose threads run along W's columns
    std::size_t projected_labels = 0;                  // W y_k: K*d
    std::size_t class_sample_sum = 0;                  // CS_k: K*d
    std::size_t class_projected_sum = 0;               // W CS_k: K*d
    std::size_t label_residual = 0;                    // R2_k: K*d
    std::size_t resident_size = 0;
    std::size_t sample_projection = 0, sample_residual = 0; // W x_i, R1_i: N*d (head only)
    std::size_t samples = 0, sample_gradient = 0;      // x_i = E u_i, dL/dx_i: N*d (teacher-student only)
    std::size_t streamed_size = 0;

    COLLAPSE_HD explicit TeamWorkspaceLayout(const TrajectoryDims& dims) {
        const std::size_t d = static_cast<std::size_t>(dims.dim);
        const std::size_t label_block = static_cast<std::size_t>(dims.classes) * d;
        const std::size_t sample_block = static_cast<std::size_t>(dims.samples) * d;
        const std::size_t head_block = dims.head_dim > 0 ? d * d : 0;
        std::size_t next = 0;
        head = next; next += head_block;
        head_gradient = next; next += head_block;
        head_transposed = next; next += head_block;
        projected_labels = next; next += dims.head_dim > 0 ? label_block : 0;
        class_sample_sum = next; next += label_block;
        class_projected_sum = next; next += dims.head_dim > 0 ? label_block : 0;
        label_residual = next; next += dims.head_dim > 0 ? label_block : 0;
        resident_size = next;
        next = 0;
        sample_projection = next; next += dims.head_dim > 0 ? sample_block : 0;
        sample_residual = next; next += dims.head_dim > 0 ? sample_block : 0;
        samples = next; next += dims.teacher_student() ? sample_block : 0;
        sample_gradient = next; next += dims.teacher_student() ? sample_block : 0;
        streamed_size = next;
    }
};

// Samples per class as compressed rows: offsets [K+1], then the members of
// each class (samples paired with it, in increasing order). M <= 2N.
COLLAPSE_HD inline std::size_t class_member_entries(const TrajectoryDims& dims) {
    return static_cast<std::size_t>(dims.classes) + 1 + 2 * static_cast<std::size_t>(dims.samples);
}

// The team form indexes within one trajectory with int (32-bit division and
// address arithmetic on the device): plans use it only where every index fits.
COLLAPSE_HD inline bool team_indices_fit_int(const TrajectoryDims& dims) {
    const std::size_t limit = 2147483647u;
    const std::size_t inputs = static_cast<std::size_t>(dims.samples) * static_cast<std::size_t>(dims.input_dim);
    return StateLayout(dims).size <= limit && TeamWorkspaceLayout(dims).streamed_size <= limit && inputs <= limit;
}

// Built once per trajectory by the team's first thread; the pair set is fixed.
template <class Real, class Team>
COLLAPSE_HD inline void build_class_members(const Team& team, const ModelProblem<Real>& problem, int* members) {
    if (team.rank == 0) {
        const int classes = problem.dims.classes, samples = problem.dims.samples;
        int* offsets = members;
        int* entries = members + classes + 1;
        for (int k = 0; k <= classes; ++k) offsets[k] = 0;
        for (int i = 0; i < samples; ++i) {
            ++offsets[problem.primary_label[i] + 1];
            if (problem.second_label[i] >= 0) ++offsets[problem.second_label[i] + 1];
        }
        for (int k = 0; k < classes; ++k) offsets[k + 1] += offsets[k];
        // One pass per class keeps each class's members in sample order with
        // no cursor array; K N work once per trajectory.
        for (int k = 0; k < classes; ++k) {
            int cursor = offsets[k];
            for (int i = 0; i < samples; ++i)
                if (problem.primary_label[i] == k || problem.second_label[i] == k) entries[cursor++] = i;
        }
    }
    team.sync();
}

// Where one team evaluation reads and writes besides the state and gradient.
template <class Real>
struct TeamBuffers {
    Real* resident = nullptr;     // TeamWorkspaceLayout::resident_size
    Real* streamed = nullptr;     // TeamWorkspaceLayout::streamed_size
    const int* class_members = nullptr; // class_member_entries, from build_class_members
};

namespace detail {

// One entry (sample i, column c) of a sample's pairs with its one or two
// labels (SPEC §8): the sum over pairs of the residuals, which make R1, and
// of their squares, which make the loss. Shared by the team and fused block
// kernels, so both add in the same order (their states agree bit for bit).
template <class Real>
struct PairTerms {
    Real residual_sum;
    Real squares;
};

// Plain model: x_i - y_k per pair. `second_label` is null for a sample with one label.
template <class Real>
COLLAPSE_HD inline PairTerms<Real> plain_pair_terms(Real sample, Real first_label, const Real* second_label) {
    const Real difference = sample - first_label;
    PairTerms<Real> terms{difference, difference * difference};
    if (second_label != nullptr) {
        const Real second_difference = sample - *second_label;
        terms.residual_sum += second_difference;
        terms.squares += second_difference * second_difference;
    }
    return terms;
}

// With a head W: forward W x_i - y_k (the residual) and backward W y_k - x_i
// (squared only). `second_label`/`second_projected` are null for one label.
template <class Real>
COLLAPSE_HD inline PairTerms<Real> head_pair_terms(Real projected_sample, Real sample, Real first_label,
                                                   Real first_projected, const Real* second_label,
                                                   const Real* second_projected) {
    const Real forward = projected_sample - first_label;
    const Real backward = first_projected - sample;
    PairTerms<Real> terms{forward, forward * forward + backward * backward};
    if (second_label != nullptr) {
        const Real second_forward = projected_sample - *second_label;
        const Real second_backward = *second_projected - sample;
        terms.residual_sum += second_forward;
        terms.squares += second_forward * second_forward + second_backward * second_backward;
    }
    return terms;
}

// dL/dy_k[b] with a head (SPEC §8): (sum_a R2_k[a] W[a][b] - (1-s) (W CS_k -
// |S_k| y_k)[b]) / M, `pull` = 1 - s. Shared by the team and fused block
// kernels; `head_stride` is the distance between W's rows (padded in the
// fused kernel).
template <class Real>
COLLAPSE_HD inline Real head_label_gradient(int k, int b, int dim, const Real* label_residual, const Real* head,
                                            int head_stride, const Real* class_projected_sum, Real label_degree,
                                            const Real* labels, Real pull, Real scale) {
    Real sum = 0;
    for (int a = 0; a < dim; ++a) sum += label_residual[k * dim + a] * head[a * head_stride + b];
    const Real target = class_projected_sum[k * dim + b] - label_degree * labels[k * dim + b];
    return (sum - pull * target) * scale;
}

template <class Real>
COLLAPSE_HD inline Real row_dot(const Real* a, const Real* b, int length) {
    Real sum = 0;
    for (int c = 0; c < length; ++c) sum += a[c] * b[c];
    return sum;
}

// Index of the nearest of `classes` rows to `point`; ties go to the lower index.
template <class Real>
COLLAPSE_HD inline int nearest_row(const Real* point, const Real* rows, int classes, int dim) {
    int best = 0;
    Real best_distance = small_matrix::squared_distance(point, rows, dim);
    for (int k = 1; k < classes; ++k) {
        const Real distance = small_matrix::squared_distance(point, rows + k * dim, dim);
        if (distance < best_distance) {
            best_distance = distance;
            best = k;
        }
    }
    return best;
}

// CS_k[c] = sum over the class's members of x_i[c].
template <class Real, class Team>
COLLAPSE_HD inline void team_class_sums(const Team& team, const TrajectoryDims& dims, const Real* samples,
                                        const int* class_members, Real* class_sample_sum) {
    const int dim = dims.dim;
    const int* entries = class_members + dims.classes + 1;
    team_for(team, static_cast<int>(dims.classes) * dim, [&](int e) {
        const int k = e / dim, c = e % dim;
        Real sum = 0;
        for (int m = class_members[k]; m < class_members[k + 1]; ++m) sum += samples[entries[m] * dim + c];
        class_sample_sum[e] = sum;
    });
}

template <class Real, class Team>
COLLAPSE_HD inline Evaluation<Real> team_evaluate_plain(const Team& team, const ModelProblem<Real>& problem,
                                                        const Real* samples, const Real* labels, Real* sample_gradient,
                                                        Real* label_gradient, const TeamBuffers<Real>& buffers,
                                                        bool with_accuracy) {
    const TrajectoryDims& dims = problem.dims;
    const int dim = dims.dim;
    const Real scale = problem.inverse_pair_count;
    Real* class_sample_sum = buffers.resident + TeamWorkspaceLayout(dims).class_sample_sum;
    team_class_sums(team, dims, samples, buffers.class_members, class_sample_sum);

    Real loss = 0;
    team_for(team, static_cast<int>(dims.samples) * dim, [&](int e) {
        const int i = e / dim, c = e % dim;
        const int second = problem.second_label[i];
        const PairTerms<Real> terms = plain_pair_terms(samples[e], labels[problem.primary_label[i] * dim + c],
                                                       second >= 0 ? &labels[second * dim + c] : nullptr);
        loss += terms.squares;
        sample_gradient[e] = terms.residual_sum * scale;
    });
    double correct = 0;
    if (with_accuracy)
        team_for(team, dims.samples, [&](int i) {
            correct += nearest_row(samples + i * dim, labels, dims.classes, dim) == problem.primary_label[i] ? 1 : 0;
        });
    team.sync(); // class sums complete
    team_for(team, static_cast<int>(dims.classes) * dim, [&](int e) {
        label_gradient[e] = (problem.label_degree[e / dim] * labels[e] - class_sample_sum[e]) * scale;
    });
    Evaluation<Real> result;
    result.loss = static_cast<Real>(0.5 * static_cast<double>(scale) * team.sum(static_cast<double>(loss)));
    result.correct = static_cast<int>(team.sum(correct));
    return result;
}

template <class Real, class Team>
COLLAPSE_HD inline Evaluation<Real> team_evaluate_head(const Team& team, const ModelProblem<Real>& problem,
                                                       const Real* samples, const Real* labels, const Real* head_A,
                                                       const Real* head_B, Real* sample_gradient, Real* label_gradient,
                                                       Real* head_A_gradient, Real* head_B_gradient,
                                                       const TeamBuffers<Real>& buffers, bool with_accuracy) {
    const TrajectoryDims& dims = problem.dims;
    const int dim = dims.dim, classes = dims.classes, head_dim = dims.head_dim;
    const int sample_entries = static_cast<int>(dims.samples) * dim, label_entries = static_cast<int>(classes) * dim;
    const Real scale = problem.inverse_pair_count;
    const Real pull = problem.stop_gradient ? Real(0) : Real(1);
    const TeamWorkspaceLayout layout(dims);
    Real* head = buffers.resident + layout.head;
    Real* head_gradient = buffers.resident + layout.head_gradient;
    Real* head_transposed = buffers.resident + layout.head_transposed;
    Real* projected_labels = buffers.resident + layout.projected_labels;
    Real* class_sample_sum = buffers.resident + layout.class_sample_sum;
    Real* class_projected_sum = buffers.resident + layout.class_projected_sum;
    Real* label_residual = buffers.resident + layout.label_residual;
    Real* projection = buffers.streamed + layout.sample_projection;
    Real* residual = buffers.streamed + layout.sample_residual;

    // 1. W[a][b] = sum_r B[a][r] A[r][b]; class sums
    team_for(team, static_cast<int>(dim) * dim, [&](int e) {
        const int a = e / dim, b = e % dim;
        Real sum = 0;
        for (int r = 0; r < head_dim; ++r) sum += head_B[a * head_dim + r] * head_A[r * dim + b];
        head[e] = sum;
        head_transposed[b * dim + a] = sum;
    });
    team_class_sums(team, dims, samples, buffers.class_members, class_sample_sum);
    team.sync();

    // 2. products with W: (W v)[a] = sum_b W^T[b][a] v[b]. Neighbouring
    // threads take neighbouring a, so they read neighbouring entries of a W^T
    // row (a W row would put them a row apart, all in one shared-memory bank).
    const auto times_head = [&](const Real* vector, int a) {
        Real sum = 0;
        for (int b = 0; b < dim; ++b) sum += head_transposed[b * dim + a] * vector[b];
        return sum;
    };
    team_for(team, label_entries, [&](int e) {
        const int k = e / dim, a = e % dim;
        const Real projected = times_head(labels + k * dim, a);
        projected_labels[e] = projected;
        class_projected_sum[e] = times_head(class_sample_sum + k * dim, a);
        label_residual[e] = problem.label_degree[k] * projected - class_sample_sum[e];
    });
    team_for(team, sample_entries, [&](int e) { projection[e] = times_head(samples + (e / dim) * dim, e % dim); });
    team.sync();

    // 3. R1 and the loss: each pair adds ||W x_i - y_k||^2 + ||W y_k - x_i||^2
    Real loss = 0;
    team_for(team, sample_entries, [&](int e) {
        const int i = e / dim, c = e % dim;
        const int first = problem.primary_label[i], second = problem.second_label[i];
        const PairTerms<Real> terms =
            head_pair_terms(projection[e], samples[e], labels[first * dim + c], projected_labels[first * dim + c],
                            second >= 0 ? &labels[second * dim + c] : nullptr,
                            second >= 0 ? &projected_labels[second * dim + c] : nullptr);
        residual[e] = terms.residual_sum;
        loss += terms.squares;
    });
    team.sync();

    // 4. dL/dx_i[b] = (sum_a R1_i[a] W[a][b] - (1-s) Q_i[b]) / M, Q_i = sum_k (W y_k - x_i)
    team_for(team, sample_entries, [&](int e) {
        const int i = e / dim, b = e % dim;
        const int first = problem.primary_label[i], second = problem.second_label[i];
        Real sum = 0;
        for (int a = 0; a < dim; ++a) sum += residual[i * dim + a] * head[a * dim + b];
        Real target = projected_labels[first * dim + b] - samples[e];
        if (second >= 0) target += projected_labels[second * dim + b] - samples[e];
        sample_gradient[e] = (sum - pull * target) * scale;
    });
    // dL/dy_k[b] = (sum_a R2_k[a] W[a][b] - (1-s) (W CS_k - |S_k| y_k)[b]) / M
    team_for(team, label_entries, [&](int e) {
        const int k = e / dim;
        label_gradient[e] = head_label_gradient(k, e % dim, dim, label_residual, head, dim, class_projected_sum,
                                                problem.label_degree[k], labels, pull, scale);
    });
    // G[a][b] = (sum_i R1_i[a] x_i[b] + sum_k R2_k[a] y_k[b]) / M
    team_for(team, static_cast<int>(dim) * dim, [&](int e) {
        const int a = e / dim, b = e % dim;
        Real sum = 0;
        for (int i = 0; i < dims.samples; ++i) sum += residual[i * dim + a] * samples[i * dim + b];
        for (int k = 0; k < classes; ++k) sum += label_residual[k * dim + a] * labels[k * dim + b];
        head_gradient[e] = sum * scale;
    });
    double correct = 0;
    if (with_accuracy)
        team_for(team, dims.samples, [&](int i) {
            correct += nearest_row(projection + i * dim, labels, classes, dim) == problem.primary_label[i] ? 1 : 0;
        });
    team.sync();

    // 5. dL/dA[r][b] = sum_a B[a][r] G[a][b];  dL/dB[a][r] = sum_b G[a][b] A[r][b]
    team_for(team, static_cast<int>(head_dim) * dim, [&](int e) {
        const int r = e / dim, b = e % dim;
        Real sum = 0;
        for (int a = 0; a < dim; ++a) sum += head_B[a * head_dim + r] * head_gradient[a * dim + b];
        head_A_gradient[e] = sum;
    });
    team_for(team, static_cast<int>(dim) * head_dim, [&](int e) {
        const int a = e / head_dim, r = e % head_dim;
        head_B_gradient[e] = row_dot(head_gradient + a * dim, head_A + r * dim, dim);
    });
    Evaluation<Real> result;
    result.loss = static_cast<Real>(0.5 * static_cast<double>(scale) * team.sum(static_cast<double>(loss)));
    result.correct = static_cast<int>(team.sum(correct));
    return result;
}

} // namespace detail

// Loss and gradient at `state` (StateLayout), computed by the whole team;
// every thread returns the same Evaluation, and all writes are visible to
// the team on return. Afterwards W y_k is in the resident buffer (h > 0).
template <class Real, class Team>
COLLAPSE_HD inline Evaluation<Real> team_evaluate(const Team& team, const ModelProblem<Real>& problem, const Real* state,
                                                  Real* gradient, const TeamBuffers<Real>& buffers, bool with_accuracy) {
    const TrajectoryDims& dims = problem.dims;
    const StateLayout state_layout(dims);
    const TeamWorkspaceLayout layout(dims);
    const int dim = dims.dim, input_dim = dims.input_dim;
    const Real* samples = state;
    Real* sample_gradient = gradient;
    if (dims.teacher_student()) {
        // x_i[c] = sum_j E[c][j] u_i[j]
        Real* encoded = buffers.streamed + layout.samples;
        team_for(team, static_cast<int>(dims.samples) * dim, [&](int e) {
            encoded[e] = detail::row_dot(state + (e % dim) * input_dim, problem.inputs + (e / dim) * input_dim, input_dim);
        });
        team.sync();
        samples = encoded;
        sample_gradient = buffers.streamed + layout.sample_gradient;
    }
    const Real* labels = state + state_layout.labels;
    Real* label_gradient = gradient + state_layout.labels;
    const Evaluation<Real> result =
        dims.head_dim == 0
            ? detail::team_evaluate_plain(team, problem, samples, labels, sample_gradient, label_gradient, buffers,
                                          with_accuracy)
            : detail::team_evaluate_head(team, problem, samples, labels, state + state_layout.head_A,
                                         state + state_layout.head_B, sample_gradient, label_gradient,
                                         gradient + state_layout.head_A, gradient + state_layout.head_B, buffers,
                                         with_accuracy);
    if (dims.teacher_student()) {
        // dL/dE[c][j] = sum_i dL/dx_i[c] u_i[j]; the reductions above ended with a barrier.
        team_for(team, static_cast<int>(dim) * input_dim, [&](int e) {
            const int c = e / input_dim, j = e % input_dim;
            Real sum = 0;
            for (int i = 0; i < dims.samples; ++i) sum += sample_gradient[i * dim + c] * problem.inputs[i * input_dim + j];
            gradient[e] = sum;
        });
        team.sync();
    }
    return result;
}

// The right-hand side as the runner (trajectory/runner.hpp) sees it when a
// team owns the trajectory.
template <class Real>
struct TeamModel {
    const ModelProblem<Real>& problem;
    TeamBuffers<Real> buffers;

    template <class Team>
    COLLAPSE_HD Evaluation<Real> evaluate(const Team& team, const Real* state, Real* gradient, bool with_accuracy) const {
        return team_evaluate(team, problem, state, gradient, buffers, with_accuracy);
    }
    // W y_k after an evaluation (h > 0).
    COLLAPSE_HD const Real* projected_labels() const {
        return buffers.resident + TeamWorkspaceLayout(problem.dims).projected_labels;
    }
};

} // namespace collapse
