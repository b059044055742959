#include "reference.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "collapse/integrators/gradient_descent.hpp"
#include "collapse/integrators/runge_kutta4.hpp"
#include "collapse/record_steps.hpp"
#include "collapse/theory/spectrum.hpp"
#include "collapse/trajectory/runner.hpp"
#include "collapse/trajectory/slow_rate_fit.hpp"


namespace collapse::testing {

std::vector<std::pair<int, int>> pair_list(const SeedDraws& draws, double frustration) {
    const int samples = static_cast<int>(draws.primary_label.size());
    std::vector<std::pair<int, int>> pairs;
    for (int i = 0; i < samples; ++i) pairs.emplace_back(i, draws.primary_label[i]);
    const int frustrated = static_cast<int>(std::floor(frustration * samples + 0.5));
    for (int r = 0; r < frustrated; ++r) {
        const int i = draws.frustration_order[r];
        pairs.emplace_back(i, draws.second_label[i]);
    }
    return pairs;
}

DenseMatrix scaled_laplacian(const std::vector<std::pair<int, int>>& pairs, int samples, int classes) {
    DenseMatrix laplacian(samples + classes);
    const double weight = 1.0 / static_cast<double>(pairs.size());
    for (auto [i, k] : pairs) {
        const int label_node = samples + k;
        laplacian(i, i) += weight;
        laplacian(label_node, label_node) += weight;
        laplacian(i, label_node) -= weight;
        laplacian(label_node, i) -= weight;
    }
    return laplacian;
}

// The engine's LAPACK wrapper: the eigensolver is LAPACK either way. What the
// tests keep independent is the graph (pair_list, scaled_laplacian, built
// from the draws alone) and the rate formula (asymptotic_flow_rate below).
Eigen symmetric_eigen(const DenseMatrix& matrix) {
    theory::SymmetricEigen solved = theory::symmetric_eigen(matrix.values, matrix.size);
    Eigen eigen;
    eigen.values = std::move(solved.values);
    eigen.vectors = DenseMatrix(matrix.size);
    eigen.vectors.values = std::move(solved.vectors); // both row-major, vectors(row, j)
    return eigen;
}

namespace {
constexpr double zero_eigenvalue = 1e-10;
constexpr double same_eigenvalue = 1e-9;
} // namespace

double smallest_nonzero_eigenvalue(const Eigen& eigen) {
    for (double value : eigen.values)
        if (value > zero_eigenvalue) return value;
    return 0.0;
}

double asymptotic_flow_rate(const Eigen& eigen, int samples, int classes) {
    const int n = eigen.vectors.size;
    double fastest = 0.0;
    for (int k = 0; k < classes; ++k)
        for (int l = k + 1; l < classes; ++l) {
            // Walk eigenspaces in ascending order; the first one with a
            // non-zero projection of e_k - e_l sets this pair's decay rate.
            double pair_rate = 0.0;
            for (int start = 0; start < n;) {
                int end = start + 1;
                while (end < n && eigen.values[end] - eigen.values[start] < same_eigenvalue) ++end;
                double projection = 0.0;
                for (int j = start; j < end; ++j) {
                    const double separation = eigen.vectors(samples + k, j) - eigen.vectors(samples + l, j);
                    projection += separation * separation;
                }
                if (projection > 1e-16) {
                    pair_rate = eigen.values[start] > zero_eigenvalue ? eigen.values[start] : 0.0;
                    break;
                }
                start = end;
            }
            fastest = std::max(fastest, pair_rate);
        }
    return fastest;
}

DenseMatrix multiply(const DenseMatrix& a, const DenseMatrix& b) {
    DenseMatrix out(a.size);
    for (int r = 0; r < a.size; ++r)
        for (int k = 0; k < a.size; ++k)
            for (int c = 0; c < a.size; ++c) out(r, c) += a(r, k) * b(k, c);
    return out;
}

std::vector<double> apply(const DenseMatrix& matrix, const std::vector<double>& state, int dim) {
    std::vector<double> out(static_cast<std::size_t>(matrix.size) * dim, 0.0);
    for (int r = 0; r < matrix.size; ++r)
        for (int k = 0; k < matrix.size; ++k)
            for (int c = 0; c < dim; ++c)
                out[static_cast<std::size_t>(r) * dim + c] += matrix(r, k) * state[static_cast<std::size_t>(k) * dim + c];
    return out;
}

namespace {

template <class Real, class Integrator>
SingleRun run_typed(const ModelShape& shape, const TrajectoryParams& params, const RunOptions& options) {
    int max_head = params.head_dim;
    const SeedDraws draws = draw_seed(shape, max_head, options.master_seed, params.seed_index);
    const TrajectorySetup<Real> setup = make_trajectory<Real>(shape, params, draws);
    const StateLayout layout(setup.dims);
    std::vector<Real> state = setup.initial_state, gradient(layout.size),
                      workspace(WorkspaceLayout(setup.dims).size), scratch(Integrator::scratch_vectors * layout.size);

    SingleRun run;
    run.steps = record_steps(options.max_steps, options.record_points);
    const std::size_t length = run.steps.size();
    for (auto* trace : {&run.label_distance, &run.projected_distance, &run.accuracy, &run.loss})
        trace->assign(length, std::nan(""));
    TrajectoryRecorder recorder{run.steps.data(), static_cast<int>(length), run.label_distance.data(),
                                run.projected_distance.data(), run.accuracy.data(), run.loss.data(), &run.summary};
    RunSettings settings;
    settings.lr = params.lr;
    settings.max_steps = options.max_steps;
    settings.collapse_on_projected = options.projected_metric;
    settings.collapse_threshold = options.threshold;
    settings.stop_on_collapse = options.stop_on_collapse;
    settings.reference_distance = setup.reference_distance;
    run_trajectory<Real, Integrator>(setup.problem(), TrajectoryBuffers<Real>{state.data(), gradient.data(),
                                                                              workspace.data(), scratch.data()},
                                     settings, recorder);
    run.initial_state.assign(setup.initial_state.begin(), setup.initial_state.end());
    run.final_state.assign(state.begin(), state.end());
    run.reference_distance = setup.reference_distance;
    // slow_rate as the engine fits it after a batch (theory::analyse_batch).
    const std::vector<double> final_labels(run.final_state.begin() + static_cast<std::ptrdiff_t>(layout.labels),
                                           run.final_state.begin() + static_cast<std::ptrdiff_t>(layout.head_A));
    const SlowRateFit fit = fit_slow_rate(run.steps.data(), run.label_distance.data(), static_cast<int>(length),
                                          run.summary.final_step, params.lr, std::numeric_limits<Real>::epsilon(),
                                          final_labels.data(), shape.classes, shape.dim, run.reference_distance);
    run.summary.slow_rate = fit.rate;
    run.summary.slow_rate_first_step = fit.window.first_step;
    run.summary.slow_rate_last_step = fit.window.last_step;
    return run;
}

} // namespace

SingleRun run_single(const ModelShape& shape, const TrajectoryParams& params, const RunOptions& options) {
    const bool rk4 = options.method == IntegratorMethod::rk4;
    if (options.precision == Precision::float32)
        return rk4 ? run_typed<float, RungeKutta4>(shape, params, options)
                   : run_typed<float, GradientDescent>(shape, params, options);
    return rk4 ? run_typed<double, RungeKutta4>(shape, params, options)
               : run_typed<double, GradientDescent>(shape, params, options);
}

} // namespace collapse::testing
