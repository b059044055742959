// Integrates one trajectory and watches it: the events, summaries and traces
// of SPEC §3. Generic over precision and integrator; both backends run this
// same function per trajectory.
#pragma once

#include <cmath>
#include <cstdint>

#include "collapse/model/collapse_model.hpp"
#include "collapse/model/hd.hpp"
#include "collapse/model/observables.hpp"
#include "collapse/results.hpp"

namespace collapse {

struct RunSettings {
    double lr = 0.1;
    std::int64_t max_steps = 0;
    bool collapse_on_projected = false; // collapse.metric = "projected"
    double collapse_threshold = 0.05;
    bool stop_on_collapse = true;
    double reference_distance = 1.0; // D_ref of SPEC §3
};

// Where the runner writes. Traces have record_count entries; entries after
// the stopping step are left as the caller initialised them (NaN).
struct TrajectoryRecorder {
    const std::int64_t* record_steps = nullptr;
    int record_count = 0;
    double* label_distance = nullptr;
    double* projected_distance = nullptr;
    double* accuracy = nullptr;
    double* loss = nullptr;
    TrajectorySummary* summary = nullptr;
};

template <class Real>
struct TrajectoryBuffers {
    Real* state = nullptr;              // StateLayout(dims).size, initial state on entry, state at final_step on exit
    Real* gradient = nullptr;           // StateLayout(dims).size
    Real* workspace = nullptr;          // WorkspaceLayout(dims).size
    Real* integrator_scratch = nullptr; // Integrator::scratch_vectors * state size
};

// The loss beyond which a run counts as diverged, relative to its start (SPEC §3).
inline constexpr double divergence_loss_ratio = 1e12;

// Minus the least-squares slope of ln(label_distance) against t = lr * step
// over the recorded points in the second half of the run [final_step/2, final_step].
COLLAPSE_HD inline double slow_phase_rate(const TrajectoryRecorder& recorder, std::int64_t final_step, double lr) {
    double count = 0, sum_t = 0, sum_v = 0, sum_tt = 0, sum_tv = 0;
    for (int j = 0; j < recorder.record_count; ++j) {
        const std::int64_t step = recorder.record_steps[j];
        const double value = recorder.label_distance[j];
        if (2 * step < final_step || step > final_step || !(value > 0) || !std::isfinite(value)) continue;
        const double t = lr * static_cast<double>(step), v = std::log(value);
        count += 1;
        sum_t += t;
        sum_v += v;
        sum_tt += t * t;
        sum_tv += t * v;
    }
    const double denominator = count * sum_tt - sum_t * sum_t;
    if (count < 3 || !(denominator > 0)) return NAN;
    return -(count * sum_tv - sum_t * sum_v) / denominator;
}

// Time at which a metric that went from `before` (step - 1) to `after` (step)
// crossed `threshold`, interpolating linearly in ln(metric).
COLLAPSE_HD inline double crossing_time(double before, double after, double threshold, std::int64_t step, double lr) {
    if (step == 0) return 0.0;
    double fraction = 1.0;
    if (after > 0 && before > after) fraction = (std::log(before) - std::log(threshold)) / (std::log(before) - std::log(after));
    return lr * (static_cast<double>(step - 1) + fraction);
}

template <class Real, class Integrator>
COLLAPSE_HD void run_trajectory(const ModelProblem<Real>& problem, const TrajectoryBuffers<Real>& buffers,
                                const RunSettings& settings, const TrajectoryRecorder& recorder) {
    const TrajectoryDims& dims = problem.dims;
    const StateLayout state_layout(dims);
    const WorkspaceLayout workspace_layout(dims);
    const Real lr = static_cast<Real>(settings.lr);
    const double inverse_reference = 1.0 / settings.reference_distance;
    TrajectorySummary& summary = *recorder.summary;
    summary.status = TrajectoryStatus::stable;
    summary.collapse_step = -1;
    summary.collapse_time = NAN;
    summary.peak_accuracy = -1;
    summary.peak_accuracy_step = -1;

    auto gradient_only = [&](const Real* state, Real* gradient) {
        evaluate(problem, state, gradient, buffers.workspace, false);
    };

    double initial_loss = 0, previous_metric = NAN;
    int next_record = 0;
    for (std::int64_t step = 0;; ++step) {
        const Evaluation<Real> evaluation = evaluate(problem, buffers.state, buffers.gradient, buffers.workspace, true);
        const double loss = static_cast<double>(evaluation.loss);
        const double accuracy = static_cast<double>(evaluation.correct) / dims.samples;
        const double label_distance =
            inverse_reference * static_cast<double>(minimum_pairwise_distance(buffers.state + state_layout.labels,
                                                                              dims.classes, dims.dim));
        // evaluate() left W y_k in the workspace when there is a head.
        const double projected_distance =
            dims.head_dim == 0 ? label_distance
                               : inverse_reference * static_cast<double>(minimum_pairwise_distance(
                                                         buffers.workspace + workspace_layout.projected_labels,
                                                         dims.classes, dims.dim));
        if (step == 0) {
            initial_loss = loss;
            summary.initial_label_distance = label_distance;
        }
        if (next_record < recorder.record_count && recorder.record_steps[next_record] == step) {
            recorder.label_distance[next_record] = label_distance;
            recorder.projected_distance[next_record] = projected_distance;
            recorder.accuracy[next_record] = accuracy;
            recorder.loss[next_record] = loss;
            ++next_record;
        }
        if (accuracy > summary.peak_accuracy) {
            summary.peak_accuracy = accuracy;
            summary.peak_accuracy_step = step;
        }

        bool stop = step == settings.max_steps;
        if (!std::isfinite(loss) || !std::isfinite(label_distance) || loss > divergence_loss_ratio * initial_loss) {
            // A diverged state says nothing about collapse, even if it crossed the threshold earlier.
            summary.status = TrajectoryStatus::diverged;
            summary.collapse_step = -1;
            summary.collapse_time = NAN;
            stop = true;
        } else {
            const double metric = settings.collapse_on_projected ? projected_distance : label_distance;
            if (summary.status != TrajectoryStatus::collapsed && metric < settings.collapse_threshold) {
                summary.status = TrajectoryStatus::collapsed;
                summary.collapse_step = step;
                summary.collapse_time =
                    crossing_time(previous_metric, metric, settings.collapse_threshold, step, settings.lr);
                stop = stop || settings.stop_on_collapse;
            }
            previous_metric = metric;
        }
        if (stop) {
            summary.final_step = step;
            summary.final_accuracy = accuracy;
            summary.final_loss = loss;
            summary.final_label_distance = label_distance;
            summary.final_projected_distance = projected_distance;
            break;
        }
        Integrator::step(gradient_only, buffers.state, buffers.gradient, lr, state_layout.size,
                         buffers.integrator_scratch);
    }
    summary.slow_rate = slow_phase_rate(recorder, summary.final_step, settings.lr);
    summary.reference_distance = settings.reference_distance;
}

} // namespace collapse
