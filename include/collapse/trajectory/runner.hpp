// Integrates one trajectory and watches it: the events, summaries and traces
// of SPEC §3. Generic over precision and integrator; both backends run this
// same function per trajectory.
#pragma once

#include <cmath>
#include <cstdint>

#include "collapse/model/collapse_model.hpp"
#include "collapse/model/hd.hpp"
#include "collapse/model/observables.hpp"
#include "collapse/model/team.hpp"
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

// Time at which a metric that went from `before` (step - 1) to `after` (step)
// crossed `threshold`, interpolating linearly in ln(metric).
COLLAPSE_HD inline double crossing_time(double before, double after, double threshold, std::int64_t step, double lr) {
    if (step == 0) return 0.0;
    double fraction = 1.0;
    if (after > 0 && before > after) fraction = (std::log(before) - std::log(threshold)) / (std::log(before) - std::log(after));
    return lr * (static_cast<double>(step - 1) + fraction);
}

// The right-hand side as the runner sees it when one thread owns the
// trajectory: `evaluate` of collapse_model.hpp over one workspace.
template <class Real>
struct SoloModel {
    const ModelProblem<Real>& problem;
    Real* workspace; // WorkspaceLayout(problem.dims).size

    COLLAPSE_HD Evaluation<Real> evaluate(const SoloTeam&, const Real* state, Real* gradient, bool with_accuracy) const {
        return collapse::evaluate(problem, state, gradient, workspace, with_accuracy);
    }
    // W y_k after an evaluation (h > 0).
    COLLAPSE_HD const Real* projected_labels() const { return workspace + WorkspaceLayout(problem.dims).projected_labels; }
};

// The observables of one step of one trajectory (SPEC §3).
struct StepObservation {
    double loss = 0, accuracy = 0, label_distance = 0, projected_distance = 0;
};

// The events, summaries and traces of SPEC §3 as a trajectory runs: every
// integration path (run_trajectory below, the lockstep batch of
// kernels/lockstep) feeds it one observation per step, from step 0.
struct TrajectoryWatch {
    TrajectorySummary summary; // final once observe() has returned true
    double initial_loss = 0;
    double previous_metric = NAN;
    int next_record = 0;
    bool active = true;

    COLLAPSE_HD void start(const TrajectorySummary& initial = TrajectorySummary{}) {
        summary = initial;
        summary.status = TrajectoryStatus::stable;
        summary.collapse_step = -1;
        summary.collapse_time = NAN;
        summary.peak_accuracy = -1;
        summary.peak_accuracy_step = -1;
        initial_loss = 0;
        previous_metric = NAN;
        next_record = 0;
        active = true;
    }

    // Takes the observation at `step`; writes it to the traces at record
    // points when `write` (one writer per team). Returns true when the
    // trajectory stops here; the summary is then complete except slow_rate,
    // which the host fits from the traces after the batch (theory/diagnostics.hpp).
    COLLAPSE_HD bool observe(std::int64_t step, const StepObservation& seen, const RunSettings& settings,
                             const TrajectoryRecorder& recorder, bool write) {
        if (step == 0) {
            initial_loss = seen.loss;
            summary.initial_label_distance = seen.label_distance;
        }
        if (next_record < recorder.record_count && recorder.record_steps[next_record] == step) {
            if (write) {
                recorder.label_distance[next_record] = seen.label_distance;
                recorder.projected_distance[next_record] = seen.projected_distance;
                recorder.accuracy[next_record] = seen.accuracy;
                recorder.loss[next_record] = seen.loss;
            }
            ++next_record;
        }
        if (seen.accuracy > summary.peak_accuracy) {
            summary.peak_accuracy = seen.accuracy;
            summary.peak_accuracy_step = step;
        }

        bool stop = step == settings.max_steps;
        if (!std::isfinite(seen.loss) || !std::isfinite(seen.label_distance) ||
            seen.loss > divergence_loss_ratio * initial_loss) {
            // A diverged state says nothing about collapse, even if it crossed the threshold earlier.
            summary.status = TrajectoryStatus::diverged;
            summary.collapse_step = -1;
            summary.collapse_time = NAN;
            stop = true;
        } else {
            const double metric = settings.collapse_on_projected ? seen.projected_distance : seen.label_distance;
            if (summary.status != TrajectoryStatus::collapsed && metric < settings.collapse_threshold) {
                summary.status = TrajectoryStatus::collapsed;
                summary.collapse_step = step;
                summary.collapse_time =
                    crossing_time(previous_metric, metric, settings.collapse_threshold, step, settings.lr);
                stop = stop || settings.stop_on_collapse;
            }
            previous_metric = metric;
        }
        if (!stop) return false;
        summary.final_step = step;
        summary.final_accuracy = seen.accuracy;
        summary.final_loss = seen.loss;
        summary.final_label_distance = seen.label_distance;
        summary.final_projected_distance = seen.projected_distance;
        summary.reference_distance = settings.reference_distance;
        active = false;
        return true;
    }
};

// Integrates one trajectory with a team of threads (model/team.hpp) and a
// model that provides evaluate(team, state, gradient, with_accuracy) and
// projected_labels(). Every thread runs the same steps and takes the same
// decisions; the team's first thread writes traces and the summary.
template <class Real, class Integrator, class Team, class Model>
COLLAPSE_HD void run_trajectory(const Team& team, const Model& model, const TrajectoryDims& dims,
                                const TrajectoryBuffers<Real>& buffers, const RunSettings& settings,
                                const TrajectoryRecorder& recorder) {
    const StateLayout state_layout(dims);
    const Real lr = static_cast<Real>(settings.lr);
    const double inverse_reference = 1.0 / settings.reference_distance;
    const bool leader = team.rank == 0;
    TrajectoryWatch watch;
    watch.start(*recorder.summary);

    auto gradient_only = [&](const Real* state, Real* gradient) { model.evaluate(team, state, gradient, false); };

    for (std::int64_t step = 0;; ++step) {
        const Evaluation<Real> evaluation = model.evaluate(team, buffers.state, buffers.gradient, true);
        StepObservation seen;
        seen.loss = static_cast<double>(evaluation.loss);
        seen.accuracy = static_cast<double>(evaluation.correct) / dims.samples;
        seen.label_distance = inverse_reference * static_cast<double>(minimum_pairwise_distance(
                                                      team, buffers.state + state_layout.labels, dims.classes, dims.dim));
        seen.projected_distance =
            dims.head_dim == 0 ? seen.label_distance
                               : inverse_reference * static_cast<double>(minimum_pairwise_distance(
                                                         team, model.projected_labels(), dims.classes, dims.dim));
        if (watch.observe(step, seen, settings, recorder, leader)) break;
        Integrator::step(team, gradient_only, buffers.state, buffers.gradient, lr, state_layout.size,
                         buffers.integrator_scratch);
        team.sync(); // the update is complete before the next evaluation reads the state
    }
    if (leader) *recorder.summary = watch.summary;
}

// One thread, one trajectory: the CPU backend and the thread-per-trajectory kernel.
template <class Real, class Integrator>
COLLAPSE_HD void run_trajectory(const ModelProblem<Real>& problem, const TrajectoryBuffers<Real>& buffers,
                                const RunSettings& settings, const TrajectoryRecorder& recorder) {
    run_trajectory<Real, Integrator>(SoloTeam{}, SoloModel<Real>{problem, buffers.workspace}, problem.dims, buffers,
                                     settings, recorder);
}

} // namespace collapse
