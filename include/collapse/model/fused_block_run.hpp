// One trajectory on the fused block step (fused_block.hpp): gd, embedding
// kind, plain or head. The same observations, events and traces as
// run_trajectory (trajectory/runner.hpp, TrajectoryWatch), with the model's
// evaluation and the gd update fused into one pass over X per step.
#pragma once

#include <new>

#include "collapse/model/fused_block_tensor.hpp"

namespace collapse {

// Math: the products on FMA micro-tiles or on tensor cores (fused_block_tensor.hpp).
template <int D, FusedMath Math = FusedMath::fma, class Real, class Team>
COLLAPSE_HD void run_fused_trajectory(const Team& team, const FusedBlockTrajectory<Real>& job) {
    constexpr int ld = FusedTiling<D>::ld;
    const ModelProblem<Real>& problem = job.problem;
    const TrajectoryDims& dims = problem.dims;
    const int classes = dims.classes, samples = dims.samples, head_dim = dims.head_dim;
    const int label_entries = classes * D, tile_samples = job.tile_samples;
    const bool with_head = head_dim > 0;
    const StateLayout state_layout(dims);
    const FusedBlockLayout layout(classes, D, with_head, tile_samples, sizeof(Real));
    Real* head = job.shared + layout.head;
    Real* head_gradient = job.shared + layout.head_gradient;
    Real* labels = job.shared + layout.labels;
    Real* projected_labels = job.shared + layout.projected_labels;
    Real* class_sums = job.shared + layout.class_sums;
    Real* label_residual = job.shared + layout.label_residual;
    Real* class_projected = job.shared + layout.class_projected;
    Real* sample_loss = job.shared + layout.sample_loss;
    Real* sample_tile = job.shared + layout.sample_tile;
    Real* residual_tile = job.shared + layout.residual_tile;
    Real* head_A = job.state + state_layout.head_A;
    Real* head_B = job.state + state_layout.head_B;
    Real* label_gradient = job.spare + state_layout.labels;
    Real* head_A_gradient = job.spare + state_layout.head_A;
    Real* head_B_gradient = job.spare + state_layout.head_B;
    const Real scale = problem.inverse_pair_count;
    const Real pull = problem.stop_gradient ? Real(0) : Real(1);
    const Real lr = static_cast<Real>(job.settings.lr);
    const double inverse_reference = 1.0 / job.settings.reference_distance;
    const bool leader = team.rank == 0;

    team_for(team, label_entries, [&](int e) { labels[e] = job.state[state_layout.labels + e]; });
    // The X buffers take turns: `current` holds X at this step, the pass writes `next`.
    Real* current = job.state;
    Real* next = job.spare;
    FusedBlockWatch* const block_watch = reinterpret_cast<FusedBlockWatch*>(job.shared + layout.watch);
    if (leader) {
        new (block_watch) FusedBlockWatch{};
        block_watch->watch.start(*job.recorder.summary);
    }
    team.sync();

    for (std::int64_t step = 0;; ++step) {
        // W = B A; the accumulators start at zero.
        if (with_head)
            team_for(team, D * D, [&](int e) {
                const int a = e / D, b = e % D;
                Real sum = 0;
                for (int r = 0; r < head_dim; ++r) sum += head_B[a * head_dim + r] * head_A[r * D + b];
                head[a * ld + b] = sum;
                head_gradient[e] = 0;
            });
        team_for(team, label_entries, [&](int e) { class_sums[e] = 0; });
        team.sync();
        if (with_head) {
            team_for(team, label_entries, [&](int e) {
                const int k = e / D, a = e % D;
                Real sum = 0;
                for (int b = 0; b < D; ++b) sum += head[a * ld + b] * labels[k * D + b];
                projected_labels[e] = sum;
            });
            team.sync();
        }
        StepObservation seen;
        seen.label_distance =
            inverse_reference * static_cast<double>(minimum_pairwise_distance(team, labels, classes, D));
        seen.projected_distance =
            with_head ? inverse_reference * static_cast<double>(minimum_pairwise_distance(team, projected_labels, classes, D))
                      : seen.label_distance;

        // The pass over X, one tile of samples at a time.
        double loss_partial = 0, correct = 0;
        for (int first = 0; first < samples; first += tile_samples) {
            const int count = samples - first < tile_samples ? samples - first : tile_samples;
            fused::load_sample_tile<D>(team, current, first, count, tile_samples, sample_tile);
            team.sync();
            if (with_head) fused::tile_products_before<D, Math>(team, sample_tile, head, residual_tile, tile_samples);
            fused::accumulate_class_sums<D>(team, job.class_members, classes, sample_tile, first, count, class_sums);
            team.sync();
            // Per sample: the nearest label, R1 (over P in place), the loss terms.
            for (int row = team.rank; row < count; row += team.size) {
                const int i = first + row;
                const int label = problem.primary_label[i], second = problem.second_label[i];
                Real* residual = residual_tile + row * ld;
                const Real* x = sample_tile + row * ld;
                correct += detail::nearest_row(with_head ? residual : x, labels, classes, D) == label ? 1 : 0;
                Real loss = 0;
                // Columns from i mod D on: neighbouring threads (samples) read
                // their labels' rows in different banks (rows of D reals of
                // different labels would share a bank, up to K-way).
                for (int column = 0; column < D; ++column) {
                    const int c = (column + i) & (D - 1);
                    const detail::PairTerms<Real> terms =
                        with_head ? detail::head_pair_terms(residual[c], x[c], labels[label * D + c],
                                                    projected_labels[label * D + c],
                                                    second >= 0 ? &labels[second * D + c] : nullptr,
                                                    second >= 0 ? &projected_labels[second * D + c] : nullptr)
                                  : detail::plain_pair_terms(x[c], labels[label * D + c],
                                                     second >= 0 ? &labels[second * D + c] : nullptr);
                    residual[c] = terms.residual_sum;
                    loss += terms.squares;
                }
                sample_loss[row] = loss;
            }
            team.sync();
            if (with_head) {
                fused::tile_products_after<D, Math>(team, problem, sample_tile, residual_tile, head, projected_labels,
                                                    first, count, tile_samples, lr, next, head_gradient);
            } else {
                team_for(team, count * D, [&](int e) {
                    const int row = e / D, c = e % D;
                    const Real gradient = residual_tile[row * ld + c] * scale;
                    next[first * D + e] = sample_tile[row * ld + c] - lr * gradient;
                });
            }
            // Sample i into loss partial i mod 32 (tiles start at multiples of 32).
            if (team.rank < fused_loss_partials)
                for (int row = team.rank; row < count; row += fused_loss_partials)
                    loss_partial += static_cast<double>(sample_loss[row]);
            team.sync(); // the next tile overwrites the tiles
        }

        // The step's one block reduction, then the SPEC §3 decision on values every thread holds.
        const double loss_sum = team.sum(team.rank < fused_loss_partials ? loss_partial : 0.0);
        const int correct_count = static_cast<int>(team.sum(correct));
        seen.loss = static_cast<double>(static_cast<Real>(0.5 * static_cast<double>(scale) * loss_sum));
        seen.accuracy = static_cast<double>(correct_count) / samples;
        if (leader) block_watch->stop = block_watch->watch.observe(step, seen, job.settings, job.recorder, true) ? 1 : 0;
        team.sync();
        if (block_watch->stop != 0) break; // rewritten only after the next step's barriers

        // Not stopping: the labels' and the head's gradients from the pass's sums, then their gd update.
        if (with_head) {
            team_for(team, label_entries, [&](int e) {
                const int k = e / D, a = e % D;
                Real sum = 0;
                for (int b = 0; b < D; ++b) sum += head[a * ld + b] * class_sums[k * D + b];
                class_projected[e] = sum;
                label_residual[e] = problem.label_degree[k] * projected_labels[e] - class_sums[e];
            });
            team.sync();
            // G[a][b] = (sum_i R1_i[a] x_i[b] + sum_k R2_k[a] y_k[b]) / M, continuing the pass's chain.
            team_for(team, D * D, [&](int e) {
                const int a = e / D, b = e % D;
                Real sum = head_gradient[e];
                for (int k = 0; k < classes; ++k) sum += label_residual[k * D + a] * labels[k * D + b];
                head_gradient[e] = sum * scale;
            });
            team_for(team, label_entries, [&](int e) {
                const int k = e / D;
                label_gradient[e] =
                    detail::head_label_gradient(k, e % D, D, label_residual, head, ld, class_projected,
                                                problem.label_degree[k], labels, pull, scale);
            });
            team.sync();
            team_for(team, head_dim * D, [&](int e) {
                const int r = e / D, b = e % D;
                Real sum = 0;
                for (int a = 0; a < D; ++a) sum += head_B[a * head_dim + r] * head_gradient[a * D + b];
                head_A_gradient[e] = sum;
            });
            team_for(team, D * head_dim, [&](int e) {
                const int a = e / head_dim, r = e % head_dim;
                head_B_gradient[e] = detail::row_dot(head_gradient + a * D, head_A + r * D, D);
            });
            team.sync();
            team_for(team, head_dim * D, [&](int e) { head_A[e] -= lr * head_A_gradient[e]; });
            team_for(team, D * head_dim, [&](int e) { head_B[e] -= lr * head_B_gradient[e]; });
        } else {
            team_for(team, label_entries, [&](int e) {
                label_gradient[e] = (problem.label_degree[e / D] * labels[e] - class_sums[e]) * scale;
            });
        }
        team_for(team, label_entries, [&](int e) { labels[e] -= lr * label_gradient[e]; });
        Real* const previous = current;
        current = next;
        next = previous;
        team.sync(); // the update is complete before the next step reads it
    }

    // The state at final_step: labels from shared memory, X from whichever buffer holds it.
    team_for(team, label_entries, [&](int e) { job.state[state_layout.labels + e] = labels[e]; });
    if (current != job.state) team_for(team, samples * D, [&](int e) { job.state[e] = current[e]; });
    team.sync();
    if (leader) *job.recorder.summary = block_watch->watch.summary;
}

} // namespace collapse
