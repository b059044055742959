// The reduced spectrum (theory/spectrum.hpp) against dense LAPACK on the full
// (N+K) x (N+K) Laplacian, built independently from the pair list: random
// graphs up to N = 1800, graphs whose rate is not lambda_2, and degenerate
// graphs (labels with only frustrated samples, label modes at exactly 1 or 2,
// repeated eigenvalues). Also the derivation of docs/model.md: every reduced
// eigenpair away from 1 and 2 solves the cubic P(lambda) v = 0.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <numeric>

#include "collapse/backend/backend.hpp"
#include "collapse/theory/diagnostics.hpp"
#include "collapse/theory/exact_trace.hpp"
#include "collapse/theory/spectrum.hpp"
#include "core_test_support.hpp"
#include "reference.hpp"
#include "spec_builder.hpp"

extern "C" void dsyev_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w,
                       double* work, const int* lwork, int* info);

namespace collapse::testing {
namespace {

struct Graph {
    std::vector<int> primary, second;
    int classes = 0;
    int samples() const { return static_cast<int>(primary.size()); }
    std::vector<std::pair<int, int>> pairs() const {
        std::vector<std::pair<int, int>> list;
        for (int i = 0; i < samples(); ++i) list.emplace_back(i, primary[static_cast<std::size_t>(i)]);
        for (int i = 0; i < samples(); ++i)
            if (second[static_cast<std::size_t>(i)] >= 0) list.emplace_back(i, second[static_cast<std::size_t>(i)]);
        return list;
    }
};

Graph drawn_graph(int classes, int per_class, double frustration, std::int64_t seed, std::uint64_t master = 7) {
    ModelShape shape;
    shape.classes = classes;
    shape.samples_per_class = per_class;
    shape.dim = 1;
    const SeedDraws draws = draw_seed(shape, 0, master, seed);
    Graph graph{draws.primary_label, std::vector<int>(draws.primary_label.size(), -1), classes};
    const int frustrated = frustrated_count(frustration, shape.samples());
    for (int r = 0; r < frustrated; ++r) {
        const auto i = static_cast<std::size_t>(draws.frustration_order[static_cast<std::size_t>(r)]);
        graph.second[i] = draws.second_label[i];
    }
    return graph;
}

// ||P(lambda) v|| / scale for the unscaled lambda = M mu, P of docs/model.md:
// (1-l)(2-l)(D_l - l) v - (2-l) A_1 v - (1-l) A_2 v, written from the graph.
double cubic_residual(const Graph& graph, double lambda, const std::vector<double>& v) {
    const auto K = static_cast<std::size_t>(graph.classes);
    std::vector<double> degree(K, 0), unfrustrated(K, 0), a2v(K, 0);
    for (std::size_t i = 0; i < graph.primary.size(); ++i) {
        const auto c = static_cast<std::size_t>(graph.primary[i]);
        degree[c] += 1;
        if (graph.second[i] < 0) {
            unfrustrated[c] += 1;
            continue;
        }
        const auto other = static_cast<std::size_t>(graph.second[i]);
        degree[other] += 1;
        const double sum = v[c] + v[other];
        a2v[c] += sum;
        a2v[other] += sum;
    }
    double residual = 0, size = 0;
    for (std::size_t c = 0; c < K; ++c) {
        const double term = (1 - lambda) * (2 - lambda) * (degree[c] - lambda) * v[c] -
                            (2 - lambda) * unfrustrated[c] * v[c] - (1 - lambda) * a2v[c];
        residual += term * term;
        size += std::pow(std::abs((1 - lambda) * (2 - lambda)) * (degree[c] + lambda) * std::abs(v[c]), 2);
    }
    return std::sqrt(residual / std::max(size, 1e-300));
}

// Dense eigenvalues only (LAPACK dsyev, jobz = N): several times cheaper
// than with vectors, for the largest graphs.
std::vector<double> dense_eigenvalues(const DenseMatrix& matrix) {
    std::vector<double> a = matrix.values, values(static_cast<std::size_t>(matrix.size));
    int n = matrix.size, lwork = -1, info = 0;
    double query = 0;
    dsyev_("N", "U", &n, a.data(), &n, values.data(), &query, &lwork, &info);
    lwork = static_cast<int>(query);
    std::vector<double> work(static_cast<std::size_t>(lwork));
    dsyev_("N", "U", &n, a.data(), &n, values.data(), work.data(), &lwork, &info);
    EXPECT_EQ(info, 0);
    return values;
}

// The eigenvalue multisets agree: the reduced ones plus the sample-only 1/M and 2/M.
void expect_same_eigenvalues(const theory::PlainSpectrum& reduced, const std::vector<double>& dense) {
    const double M = static_cast<double>(reduced.pair_count), largest = dense.back();
    std::vector<double> all = reduced.eigenvalues;
    all.insert(all.end(), static_cast<std::size_t>(reduced.sample_only_unit), 1.0 / M);
    all.insert(all.end(), static_cast<std::size_t>(reduced.sample_only_two), 2.0 / M);
    std::sort(all.begin(), all.end());
    ASSERT_EQ(all.size(), dense.size());
    double worst = 0;
    for (std::size_t j = 0; j < all.size(); ++j) worst = std::max(worst, std::abs(all[j] - dense[j]));
    EXPECT_LE(worst, 1e-12 * largest);
    EXPECT_NEAR(reduced.largest(), largest, 1e-12 * largest);
    EXPECT_NEAR(theory::critical_lr(reduced, IntegratorMethod::gd), 2 / largest, 1e-11 / largest);
}

// Everything the reduced form claims, checked against the dense form.
// Returns the dense flow rate over lambda_2 (> 1: the rate is not lambda_2).
double expect_matches_dense(const Graph& graph, const std::string& what) {
    SCOPED_TRACE(what);
    const int N = graph.samples(), K = graph.classes;
    const Eigen dense = symmetric_eigen(scaled_laplacian(graph.pairs(), N, K));
    const theory::PlainSpectrum reduced = theory::plain_spectrum(graph.primary, graph.second, K);
    const double M = static_cast<double>(reduced.pair_count), largest = dense.values.back();
    EXPECT_EQ(reduced.pair_count, static_cast<std::int64_t>(graph.pairs().size()));
    EXPECT_LE(reduced.size, 3 * K);
    expect_same_eigenvalues(reduced, dense.values);

    // Sample-only modes have no label part: the dense label rows see only the reduced ones.
    const double flow = asymptotic_flow_rate(dense, N, K);
    EXPECT_NEAR(theory::flow_rate(reduced), flow, 1e-10 * largest);

    // The derivation: away from 1 and 2, P(lambda) v = 0 for the label part v.
    for (int j = 0; j < reduced.size; ++j) {
        const double lambda = reduced.eigenvalues[static_cast<std::size_t>(j)] * M;
        if (std::abs(lambda - 1) < 1e-6 || std::abs(lambda - 2) < 1e-6) continue;
        std::vector<double> v(static_cast<std::size_t>(K));
        double norm = 0;
        for (int k = 0; k < K; ++k) norm += std::pow(v[static_cast<std::size_t>(k)] = reduced.vector(reduced.label_row(k), j), 2);
        if (norm < 1e-20) continue;
        EXPECT_LT(cubic_residual(graph, lambda, v), 1e-9) << "mode " << j << " lambda " << lambda;
    }
    const double lambda2 = smallest_nonzero_eigenvalue(dense);
    return lambda2 > 0 ? flow / lambda2 : 0;
}

TEST(TheorySpectrum, ReducedEqualsDenseUpToN1800) {
    // The check (K = 6, N = 1800, f = 0.2): eigenvalues, lambda_max.
    const Graph largest = drawn_graph(6, 300, 0.2, 0);
    expect_same_eigenvalues(theory::plain_spectrum(largest.primary, largest.second, 6),
                            dense_eigenvalues(scaled_laplacian(largest.pairs(), largest.samples(), 6)));
    // With eigenvectors (rates, separation): a sparse-frustration graph of
    // N = 1000 that splits into components, K = 2, and many labels.
    EXPECT_GT(expect_matches_dense(drawn_graph(4, 250, 0.004, 2), "K 4 n 250 f 0.004"), 0);
    expect_matches_dense(drawn_graph(2, 200, 0.5, 3), "K 2 n 200 f 0.5");
    expect_matches_dense(drawn_graph(12, 20, 0.9, 4), "K 12 n 20 f 0.9");
}

TEST(TheorySpectrum, ManySmallGraphsIncludingRatesThatAreNotLambda2) {
    int not_lambda2 = 0;
    for (std::int64_t seed = 0; seed < 40; ++seed)
        for (double frustration : {0.0, 0.05, 0.1, 0.3, 0.7, 1.0})
            not_lambda2 += expect_matches_dense(drawn_graph(4, 5, frustration, seed),
                                                "seed " + std::to_string(seed) + " f " + std::to_string(frustration)) >
                           1.2;
    std::cout << "graphs whose rate is not lambda_2: " << not_lambda2 << " of 240\n";
    EXPECT_GE(not_lambda2, 1) << "no graph whose rate is not lambda_2 among those searched";
}

// Hand-built graphs where the elimination of the samples breaks down
// (lambda in {1, 2} carrying a label part, a label without unfrustrated
// samples) or eigenvalues repeat; the symmetric reduction has no exception.
std::vector<std::pair<std::string, Graph>> degenerate_graphs() {
    return {
        {"K 2 n 1 f 0: label modes at exactly 2, each eigenvalue twice", {{0, 1}, {-1, -1}, 2}},
        {"label 2 has only frustrated samples", {{0, 1, 2, 2, 0, 1}, {-1, -1, 0, 1, -1, -1}, 3}},
        {"label 1 has no unfrustrated sample: label modes at exactly 1 and 2", {{2, 2, 0}, {1, 0, -1}, 3}},
        {"every sample frustrated", {{0, 1, 2, 0, 1, 2}, {1, 2, 0, 2, 0, 1}, 3}},
        {"three-fold cyclic symmetry: repeated eigenvalues", {{0, 0, 0, 1, 1, 1, 2, 2, 2}, {-1, -1, 1, -1, -1, 2, -1, -1, 0}, 3}},
        {"a label with no samples at all", {{0, 0, 1, 1}, {-1, 1, -1, -1}, 3}},
    };
}

TEST(TheorySpectrum, DegenerateGraphs) {
    for (const auto& [what, graph] : degenerate_graphs()) expect_matches_dense(graph, what);
    // f = 0 with equal classes: K identical components, every eigenvalue K-fold.
    expect_matches_dense(drawn_graph(4, 5, 0.0, 0), "f 0: four identical components");
}

// The exact solution on the degenerate graphs against the dense matrix power.
TEST(TheorySpectrum, ExactSolutionOnDegenerateGraphsEqualsMatrixPower) {
    const int dim = 3;
    for (const auto& [what, graph] : degenerate_graphs()) {
        SCOPED_TRACE(what);
        const int N = graph.samples(), K = graph.classes, n = N + K;
        std::vector<double> state(static_cast<std::size_t>(n) * dim);
        for (std::size_t e = 0; e < state.size(); ++e) state[e] = std::sin(1.7 * static_cast<double>(e) + 0.3);
        const theory::PlainSolution solution(theory::plain_spectrum(graph.primary, graph.second, K), graph.primary,
                                             graph.second, state.data(), state.data() + N * dim, dim);
        const DenseMatrix laplacian = scaled_laplacian(graph.pairs(), N, K);
        const double lr = 0.9 / solution.spectrum().largest();
        DenseMatrix step(n);
        for (int r = 0; r < n; ++r)
            for (int c = 0; c < n; ++c) step(r, c) = (r == c ? 1.0 : 0.0) - lr * laplacian(r, c);
        std::vector<double> z = state;
        for (int t = 1; t <= 60; ++t) {
            z = apply(step, z, dim);
            const std::vector<double> y = solution.label_embeddings(IntegratorMethod::gd, lr, t);
            double smallest = INFINITY;
            for (int k = 0; k < K; ++k) {
                for (int e = 0; e < dim; ++e)
                    EXPECT_NEAR(y[static_cast<std::size_t>(k * dim + e)], z[static_cast<std::size_t>((N + k) * dim + e)], 1e-12);
                for (int l = k + 1; l < K; ++l) {
                    double squared = 0;
                    for (int e = 0; e < dim; ++e)
                        squared += std::pow(z[static_cast<std::size_t>((N + k) * dim + e)] - z[static_cast<std::size_t>((N + l) * dim + e)], 2);
                    smallest = std::min(smallest, std::sqrt(squared));
                }
            }
            EXPECT_NEAR(solution.minimum_label_distance(IntegratorMethod::gd, lr, t), smallest, 1e-12) << "step " << t;
        }
    }
}

// Far below any floor the exact trace decays at exactly the asymptotic rate,
// also where that rate is not lambda_2: a pair's difference carries no
// round-off from slower modes that do not separate it (which would pin the
// trace to the slower rate at ~1e-16 of the embeddings).
TEST(TheorySpectrum, ExactTraceReachesTheAsymptoteFarBelowRoundOff) {
    int checked = 0;
    for (std::int64_t seed = 0; seed < 40; ++seed)
        for (double frustration : {0.05, 0.1, 0.3, 0.7, 1.0}) {
            const Graph graph = drawn_graph(4, 5, frustration, seed);
            theory::PlainSpectrum spectrum = theory::plain_spectrum(graph.primary, graph.second, 4);
            const double lambda2 = smallest_nonzero_eigenvalue(symmetric_eigen(scaled_laplacian(graph.pairs(), graph.samples(), 4)));
            if (!(theory::flow_rate(spectrum) > 1.2 * lambda2)) continue;
            SCOPED_TRACE("seed " + std::to_string(seed) + " f " + std::to_string(frustration));
            std::vector<double> state(static_cast<std::size_t>(graph.samples() + 4) * 2);
            for (std::size_t e = 0; e < state.size(); ++e) state[e] = std::cos(0.9 * static_cast<double>(e) + 0.1);
            const double lr = 0.5;
            const double rate = theory::integrator_rate(spectrum, IntegratorMethod::gd, lr);
            const double slowest = -std::log(1 - lr * lambda2) / lr;
            const theory::PlainSolution solution(std::move(spectrum), graph.primary, graph.second, state.data(),
                                                 state.data() + graph.samples() * 2, 2);
            // Deep enough that round-off of the slower lambda_2 mode, ~1e-16 of
            // its size, would be e^60 times the true distance.
            const auto first = static_cast<std::int64_t>(60.0 / ((rate - slowest) * lr)) + 1;
            const auto last = first + first / 4;
            if (rate * lr * static_cast<double>(last) > 650) continue; // e^-650: near the end of double's range
            const double near = solution.minimum_label_distance(IntegratorMethod::gd, lr, first);
            const double far = solution.minimum_label_distance(IntegratorMethod::gd, lr, last);
            ASSERT_GT(far, 0) << "near " << near << " rate " << rate << " slowest " << slowest << " first " << first;
            EXPECT_LT(near, 1e-30);
            EXPECT_NEAR(-std::log(far / near) / (lr * static_cast<double>(last - first)) / rate, 1.0, 1e-6);
            ++checked;
        }
    EXPECT_GE(checked, 1) << "no graph whose rate is not lambda_2";
}

// critical_lr on the medium shape (K = 10, n = 100, N = 1000, d = 32), which
// the old 256-node cap left NaN, through the scheduler's analysis.
TEST(TheorySpectrum, CriticalLrOnMediumShape) {
    const SweepSpec spec =
        test_spec({.classes = 10, .samples_per_class = 100, .dim = 32, .max_steps = 4, .record_points = 4,
                   .master_seed = 5, .seeds = 2, .axes = {frustration_axis({0.0, 0.1}), head_dim_axis({0}), lr_axis({0.5})}});
    const Grid grid(spec);
    const BatchOutput out = run_analysed(spec, grid);
    for (std::size_t b = 0; b < out.size(); ++b) {
        const TrajectoryParams params = grid.params(out.flat_index[b]);
        const SeedDraws draws = draw_seed(spec.shape, 0, spec.master_seed, params.seed_index);
        const double expected = 2 / dense_eigenvalues(scaled_laplacian(pair_list(draws, params.frustration),
                                                                        spec.shape.samples(), spec.shape.classes))
                                        .back();
        EXPECT_NEAR(out.theory[b].critical_lr, expected, 1e-11 * expected);
        EXPECT_TRUE(std::isfinite(out.theory[b].theory_slow_rate));
        EXPECT_TRUE(std::isfinite(out.theory_label_distance_trace[b * static_cast<std::size_t>(out.trace_length)]));
    }
}

} // namespace
} // namespace collapse::testing
