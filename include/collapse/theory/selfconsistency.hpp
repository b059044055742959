// The fixed-point condition of head + stop-gradient training (docs/model.md,
// "Theory diagnostics"): at a stationary point with W invertible,
// W^2 y_k = sum_l P_kl y_l, with P the label Markov matrix of the pair graph.
#pragma once

#include <vector>

namespace collapse::theory {

// P (K x K, row-major, rows sum to 1): P_kl = mean over the samples i paired
// with label k of [l in labels(i)] / |labels(i)|. A label with no samples
// (impossible in the embedding kind) gets a zero row.
std::vector<double> label_markov_matrix(const std::vector<int>& primary_label, const std::vector<int>& second_label,
                                        int classes);

// ||W^2 Y^T - Y^T P^T||_F / ||Y^T P^T||_F for W (d x d, row-major), Y (K x d,
// row-major). NaN when the denominator is zero or anything is non-finite.
double selfconsistency_residual(const double* head, const double* labels, const std::vector<double>& markov,
                                int classes, int dim);

} // namespace collapse::theory
