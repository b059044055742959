#include "collapse/theory/diagnostics.hpp"

#include <omp.h>

#include <map>
#include <optional>
#include <utility>

#include "collapse/backend/parallel_errors.hpp"
#include "collapse/model/setup.hpp"
#include "collapse/theory/selfconsistency.hpp"
#include "collapse/theory/spectrum.hpp"

namespace collapse::theory {
namespace {

// What one (seed, frustrated count) graph must provide to the batch.
struct GraphWork {
    std::int64_t seed_index = 0;
    double frustration = 0;
    bool needs_spectrum = false;
    bool needs_markov = false;
    std::optional<PlainSpectrum> spectrum;
    std::vector<double> markov;
};

using GraphKey = std::pair<std::int64_t, int>; // (seed index, frustrated count): the pair set is a function of these

bool is_plain(const SweepSpec& spec, const TrajectoryParams& params) {
    return spec.shape.kind == ModelKind::embedding && params.head_dim == 0;
}

// The fixed-point condition needs every dL/dx_i = 0, which a shared
// teacher-student encoder does not give; collapsed or diverged states are not fixed points of interest.
bool wants_residual(const SweepSpec& spec, const TrajectoryParams& params, TrajectoryStatus status) {
    return spec.shape.kind == ModelKind::embedding && params.head_dim > 0 && params.stop_gradient &&
           status == TrajectoryStatus::stable;
}

void build_graph(const SweepSpec& spec, GraphWork& work) {
    // The engine's own pair set (make_trajectory), so theory and run see the same graph.
    const SeedDraws draws = draw_seed(spec.shape, 0, spec.master_seed, work.seed_index);
    TrajectoryParams params = spec.defaults;
    params.frustration = work.frustration;
    params.head_dim = 0;
    params.seed_index = work.seed_index;
    const TrajectorySetup<double> setup = make_trajectory<double>(spec.shape, params, draws);
    if (work.needs_spectrum) work.spectrum = plain_spectrum(setup.primary_label, setup.second_label, spec.shape.classes);
    if (work.needs_markov) work.markov = label_markov_matrix(setup.primary_label, setup.second_label, spec.shape.classes);
}

} // namespace

void store_theory_diagnostics(const SweepSpec& spec, const Grid& grid, BatchOutput& out, int threads) {
    const std::size_t count = out.size();
    out.theory.assign(count, TheoryDiagnostics{});
    const int samples = spec.shape.samples(), classes = spec.shape.classes, dim = spec.shape.dim;
    const bool spectrum_affordable = samples + classes <= max_spectrum_nodes;

    std::vector<TrajectoryParams> params(count);
    std::map<GraphKey, GraphWork> graphs;
    for (std::size_t b = 0; b < count; ++b) {
        params[b] = grid.params(out.flat_index[b]);
        const bool spectrum = spectrum_affordable && is_plain(spec, params[b]);
        const bool markov = wants_residual(spec, params[b], out.summary[b].status);
        if (!spectrum && !markov) continue;
        GraphWork& work = graphs[{params[b].seed_index, frustrated_count(params[b].frustration, samples)}];
        work.seed_index = params[b].seed_index;
        work.frustration = params[b].frustration;
        work.needs_spectrum = work.needs_spectrum || spectrum;
        work.needs_markov = work.needs_markov || markov;
    }
    std::vector<GraphWork*> pending;
    for (auto& entry : graphs) pending.push_back(&entry.second);
    const auto jobs = static_cast<std::int64_t>(pending.size());
    FirstError error;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads > 0 ? threads : omp_get_max_threads()) if (jobs > 1)
    for (std::int64_t j = 0; j < jobs; ++j) {
        try {
            build_graph(spec, *pending[static_cast<std::size_t>(j)]);
        } catch (...) {
            error.capture();
        }
    }
    error.rethrow_if_any();

    const auto label_size = static_cast<std::size_t>(classes) * static_cast<std::size_t>(dim);
    const auto head_size = static_cast<std::size_t>(dim) * static_cast<std::size_t>(dim);
    for (std::size_t b = 0; b < count; ++b) {
        const auto found = graphs.find({params[b].seed_index, frustrated_count(params[b].frustration, samples)});
        if (found == graphs.end()) continue;
        const GraphWork& work = found->second;
        TheoryDiagnostics& theory = out.theory[b];
        if (work.spectrum && is_plain(spec, params[b])) {
            theory.theory_slow_rate = integrator_rate(*work.spectrum, spec.integrator.method, params[b].lr);
            theory.critical_lr = critical_lr(*work.spectrum, spec.integrator.method);
        }
        if (!work.markov.empty() && wants_residual(spec, params[b], out.summary[b].status))
            theory.selfconsistency_residual =
                selfconsistency_residual(out.final_head.data() + b * head_size,
                                         out.final_label_embeddings.data() + b * label_size, work.markov, classes, dim);
    }
}

} // namespace collapse::theory
