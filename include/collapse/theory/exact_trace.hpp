// The plain model's exact label trajectory (docs/model.md, "The exact
// trace"): with the reduced eigenpairs (lambda_j, s_j) of PlainSpectrum,
//
//     y(step) = sum_j g_j(step) v_j (s_j^T Z0_reduced),
//
// v_j the label rows of s_j, g_j = (1 - lr lambda_j)^step for gd and
// exp(-lr step lambda_j) (the gradient flow) for rk4. Sample-only modes have
// no label part and drop out. The zero modes are taken exactly: they hold
// each connected component's conserved mean.
#pragma once

#include <cstdint>
#include <vector>

#include "collapse/config.hpp"
#include "collapse/theory/spectrum.hpp"

namespace collapse::theory {

class PlainSolution {
public:
    // `samples` N x d and `labels` K x d (row-major) are the initial state;
    // the labels must be the ones `spectrum` was built from.
    PlainSolution(PlainSpectrum spectrum, const std::vector<int>& primary_label, const std::vector<int>& second_label,
                  const double* samples, const double* labels, int dim);

    // Mode factor g(step) of eigenvalue lambda.
    static double mode_factor(IntegratorMethod method, double lr, std::int64_t step, double lambda);

    // y_k(step), K x d row-major.
    std::vector<double> label_embeddings(IntegratorMethod method, double lr, std::int64_t step) const;

    // min over k != l of ||y_k(step) - y_l(step)||. The pairs that can be the
    // closest have their difference summed over their own separating modes
    // only, so it decays to far below the round-off of the embeddings
    // themselves; the others are ruled out from the embeddings, at O(K^2 d).
    double minimum_label_distance(IntegratorMethod method, double lr, std::int64_t step) const;

    const PlainSpectrum& spectrum() const { return spectrum_; }

private:
    // ||y_k - y_l|| summed over the pair's separating modes, `factor` the g_j.
    double pair_distance(const std::vector<double>& factor, int k, int l, std::size_t pair, double* difference) const;

    PlainSpectrum spectrum_;
    int dim_ = 0;
    std::vector<double> coefficients_;   // size x d: s_j^T Z0_reduced
    std::vector<double> component_mean_; // components x d: the conserved means
    std::vector<double> mode_size_;      // per mode: max_k |v_jk| |c_j|, the scale of its round-off
};

} // namespace collapse::theory
