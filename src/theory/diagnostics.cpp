#include "collapse/theory/diagnostics.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>

#include "collapse/backend/parallel_errors.hpp"
#include "collapse/model/setup.hpp"
#include "collapse/record_steps.hpp"
#include "collapse/theory/exact_trace.hpp"
#include "collapse/theory/selfconsistency.hpp"
#include "collapse/theory/spectrum.hpp"
#include "collapse/trajectory/slow_rate_fit.hpp"

namespace collapse::theory {
namespace {

// What one (seed, frustrated count, init_scale) graph must provide to its trajectories.
struct GraphWork {
    TrajectoryParams params; // seed_index, frustration and init_scale are what matter
    bool needs_solution = false;
    bool needs_markov = false;
    std::optional<PlainSolution> solution;
    std::vector<double> markov;
};

// The pair set is a function of (seed, frustrated count); the initial state also of init_scale.
using GraphKey = std::tuple<std::int64_t, int, double>;

bool is_plain(const SweepSpec& spec, const TrajectoryParams& params) {
    return spec.shape.kind == ModelKind::embedding && params.head_dim == 0;
}

// The fixed-point condition needs every dL/dx_i = 0, which a shared
// teacher-student encoder does not give; collapsed or diverged states are not fixed points of interest.
bool wants_residual(const SweepSpec& spec, const TrajectoryParams& params, TrajectoryStatus status) {
    return spec.shape.kind == ModelKind::embedding && params.head_dim > 0 && params.stop_gradient &&
           status == TrajectoryStatus::stable;
}

template <class Real>
void build_solution(const SweepSpec& spec, const SeedDraws& draws, GraphWork& work) {
    // The engine's own pair set and initial state in the run precision
    // (make_trajectory), so theory and run start from the same numbers.
    const TrajectorySetup<Real> setup = make_trajectory<Real>(spec.shape, work.params, draws);
    const StateLayout layout(setup.dims);
    const std::vector<double> state(setup.initial_state.begin(), setup.initial_state.end());
    work.solution.emplace(plain_spectrum(setup.primary_label, setup.second_label, spec.shape.classes),
                          setup.primary_label, setup.second_label, state.data(), state.data() + layout.labels,
                          spec.shape.dim);
}

void build_graph(const SweepSpec& spec, GraphWork& work) {
    const SeedDraws draws = draw_seed(spec.shape, 0, spec.master_seed, work.params.seed_index);
    if (work.needs_solution) {
        if (spec.integrator.precision == Precision::float32) build_solution<float>(spec, draws, work);
        else build_solution<double>(spec, draws, work);
    }
    if (work.needs_markov) {
        const TrajectorySetup<double> setup = make_trajectory<double>(spec.shape, work.params, draws);
        work.markov = label_markov_matrix(setup.primary_label, setup.second_label, spec.shape.classes);
    }
}

} // namespace

void analyse_batch(const SweepSpec& spec, const Grid& grid, BatchOutput& out, int threads) {
    const std::size_t count = out.size();
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const std::vector<std::int64_t> steps = record_steps(spec);
    if (static_cast<int>(steps.size()) != out.trace_length || out.summary.size() != count ||
        out.label_distance_trace.size() != count * steps.size())
        throw std::invalid_argument("analyse_batch: the batch's traces do not match the spec's " +
                                    std::to_string(steps.size()) + " record steps");
    const auto trace_length = steps.size();
    out.theory.assign(count, TheoryDiagnostics{});
    out.theory_label_distance_trace.assign(count * trace_length, nan);
    const int samples = spec.shape.samples(), classes = spec.shape.classes, dim = spec.shape.dim;
    const int team = threads > 0 ? threads : omp_get_max_threads();
    const auto label_size = static_cast<std::size_t>(classes) * static_cast<std::size_t>(dim);
    const auto head_size = static_cast<std::size_t>(dim) * static_cast<std::size_t>(dim);

    // The measured slow_rate and its window, every trajectory.
    const double epsilon = spec.integrator.precision == Precision::float32 ? std::numeric_limits<float>::epsilon()
                                                                          : std::numeric_limits<double>::epsilon();
    std::vector<TrajectoryParams> params(count);
    std::vector<SlowRateWindow> windows(count);
    const auto trajectories = static_cast<std::int64_t>(count);
    FirstError fit_error;
#pragma omp parallel for schedule(dynamic, 64) num_threads(team) if (trajectories > 64)
    for (std::int64_t slot = 0; slot < trajectories; ++slot) {
        try {
            const auto b = static_cast<std::size_t>(slot);
            params[b] = grid.params(out.flat_index[b]);
            TrajectorySummary& summary = out.summary[b];
            if (summary.status == TrajectoryStatus::not_run) continue;
            const SlowRateFit fit = fit_slow_rate(steps.data(), out.label_distance_trace.data() + b * trace_length,
                                                  out.trace_length, summary.final_step, params[b].lr, epsilon,
                                                  out.final_label_embeddings.data() + b * label_size, classes, dim,
                                                  summary.reference_distance);
            windows[b] = fit.window;
            summary.slow_rate = fit.rate;
            summary.slow_rate_first_step = fit.window.first_step;
            summary.slow_rate_last_step = fit.window.last_step;
        } catch (...) {
            fit_error.capture();
        }
    }
    fit_error.rethrow_if_any();

    // The theory columns, one graph at a time: each is built, serves its
    // trajectories and is dropped, so memory stays at a few graphs per thread
    // even for a batch of 10^5 single-trajectory seeds.
    std::map<GraphKey, std::vector<std::size_t>> members;
    for (std::size_t b = 0; b < count; ++b) {
        if (out.summary[b].status == TrajectoryStatus::not_run) continue;
        const bool solution = is_plain(spec, params[b]);
        if (!solution && !wants_residual(spec, params[b], out.summary[b].status)) continue;
        members[{params[b].seed_index, frustrated_count(params[b].frustration, samples),
                 solution ? params[b].init_scale : 0.0}]
            .push_back(b);
    }
    std::vector<const std::vector<std::size_t>*> groups;
    for (const auto& entry : members) groups.push_back(&entry.second);
    const auto jobs = static_cast<std::int64_t>(groups.size());
    FirstError error;
#pragma omp parallel for schedule(dynamic, 1) num_threads(team) if (jobs > 1)
    for (std::int64_t job = 0; job < jobs; ++job) {
        try {
            const std::vector<std::size_t>& slots = *groups[static_cast<std::size_t>(job)];
            GraphWork work;
            work.params = params[slots.front()];
            work.params.head_dim = 0;
            for (std::size_t b : slots) {
                work.needs_solution = work.needs_solution || is_plain(spec, params[b]);
                work.needs_markov = work.needs_markov || wants_residual(spec, params[b], out.summary[b].status);
            }
            build_graph(spec, work);
            for (std::size_t b : slots) {
                TheoryDiagnostics& theory = out.theory[b];
                if (work.solution && is_plain(spec, params[b])) {
                    const PlainSpectrum& spectrum = work.solution->spectrum();
                    theory.theory_slow_rate = integrator_rate(spectrum, spec.integrator.method, params[b].lr);
                    theory.critical_lr = critical_lr(spectrum, spec.integrator.method);
                    const double reference = out.summary[b].reference_distance;
                    double* exact = out.theory_label_distance_trace.data() + b * trace_length;
                    if (reference > 0 && std::isfinite(reference))
                        for (std::size_t j = 0; j < trace_length; ++j)
                            exact[j] = work.solution->minimum_label_distance(spec.integrator.method, params[b].lr, steps[j]) /
                                       reference;
                    theory.theory_window_rate = fitted_rate(steps.data(), exact, windows[b], params[b].lr);
                }
                if (!work.markov.empty() && wants_residual(spec, params[b], out.summary[b].status))
                    theory.selfconsistency_residual =
                        selfconsistency_residual(out.final_head.data() + b * head_size,
                                                 out.final_label_embeddings.data() + b * label_size, work.markov, classes,
                                                 dim);
            }
        } catch (...) {
            error.capture();
        }
    }
    error.rethrow_if_any();
}

} // namespace collapse::theory
