// Independent references for the core tests: the bipartite graph Laplacian
// built straight from the seed's draws, dense linear algebra (LAPACK), and a
// single-trajectory driver around the shared runner.
#pragma once

#include <cstdint>
#include <vector>

#include "collapse/config.hpp"
#include "collapse/model/setup.hpp"
#include "collapse/results.hpp"

namespace collapse::testing {

// Dense row-major square matrix.
struct DenseMatrix {
    int size = 0;
    std::vector<double> values;
    explicit DenseMatrix(int n = 0) : size(n), values(static_cast<std::size_t>(n) * n, 0.0) {}
    double& operator()(int r, int c) { return values[static_cast<std::size_t>(r) * size + c]; }
    double operator()(int r, int c) const { return values[static_cast<std::size_t>(r) * size + c]; }
};

// The pair list of SPEC §1 for fraction f, from the draws alone: (i, c_i) and,
// for the first floor(fN + 1/2) samples of pi, (i, c'_i).
std::vector<std::pair<int, int>> pair_list(const SeedDraws& draws, double frustration);

// (1/M) L_G over nodes [samples..., labels...].
DenseMatrix scaled_laplacian(const std::vector<std::pair<int, int>>& pairs, int samples, int classes);

struct Eigen {
    std::vector<double> values;  // ascending
    DenseMatrix vectors;         // column j is eigenvector j: vectors(row, j)
};
Eigen symmetric_eigen(const DenseMatrix& matrix);

// Smallest non-zero eigenvalue (lambda_2 for a connected graph).
double smallest_nonzero_eigenvalue(const Eigen& eigen);
// SPEC §3 closed-form asymptotic rate of the minimum label distance of the
// gradient flow: max over label pairs of the smallest non-zero eigenvalue
// whose eigenspace separates them (eigenspaces, so degeneracy is handled).
double asymptotic_flow_rate(const Eigen& eigen, int samples, int classes);

DenseMatrix multiply(const DenseMatrix& a, const DenseMatrix& b);
// rows x d state block times a square matrix on the left: out = M Z.
std::vector<double> apply(const DenseMatrix& matrix, const std::vector<double>& state, int dim);

// Everything the tests look at after one trajectory.
struct SingleRun {
    std::vector<double> initial_state, final_state;
    TrajectorySummary summary;
    std::vector<double> label_distance, projected_distance, accuracy, loss;
    std::vector<std::int64_t> steps;
    double reference_distance = 0;
};

struct RunOptions {
    IntegratorMethod method = IntegratorMethod::gd;
    Precision precision = Precision::float64;
    std::int64_t max_steps = 100;
    bool stop_on_collapse = true;
    double threshold = 0.05;
    bool projected_metric = false;
    int record_points = 128;
    std::uint64_t master_seed = 7;
};

SingleRun run_single(const ModelShape& shape, const TrajectoryParams& params, const RunOptions& options);

} // namespace collapse::testing
