// Closed-form theory of the plain model (h = 0, embedding kind): the flow is
// linear, Z' = -(1/M) L_G Z, so its stability limit and its asymptotic
// collapse rate follow from the spectrum of (1/M) L_G (docs/model.md,
// "Theory diagnostics"). Dense symmetric eigendecomposition through LAPACK.
#pragma once

#include <vector>

#include "collapse/config.hpp"

namespace collapse::theory {

// Dense eigen costs O(n^3) time and O(n^2) memory in n = N + K nodes; above
// this the diagnostics are skipped (NaN). One decomposition per (seed, f)
// graph and batch: at 1024 nodes (~1 s each) it outweighed a plain-model run
// of 2000 steps by 100x (docs/performance.md), at 256 nodes it costs ~15 ms.
inline constexpr int max_spectrum_nodes = 256;

// Eigenpairs of a dense symmetric matrix, eigenvalues ascending.
struct SymmetricEigen {
    int size = 0;
    std::vector<double> values;
    std::vector<double> vectors; // row-major: vectors[row * size + j] is entry `row` of eigenvector j
    double vector(int row, int j) const { return vectors[static_cast<std::size_t>(row) * size + j]; }
};

// LAPACK dsyev on a row-major symmetric n x n matrix. Throws std::runtime_error on failure.
SymmetricEigen symmetric_eigen(const std::vector<double>& matrix, int size);

// (1/M) L_G over nodes [samples..., labels...] for the pair set D: (i, c_i)
// for every sample and (i, second_label[i]) where second_label[i] >= 0.
std::vector<double> scaled_laplacian(const std::vector<int>& primary_label, const std::vector<int>& second_label,
                                     int classes);

// What the rate formulas need from the spectrum, per label pair (k < l).
struct LabelPairModes {
    bool zero_mode_separates = false;   // different connected components: the pair never decays
    std::vector<double> separating;     // non-zero eigenvalues whose eigenspace separates y_k from y_l
};

struct PlainSpectrum {
    std::vector<double> eigenvalues;    // all of them, ascending
    std::vector<LabelPairModes> pairs;  // (0,1), (0,2), ..., (K-2,K-1)
    double largest() const { return eigenvalues.empty() ? 0.0 : eigenvalues.back(); }
};

PlainSpectrum plain_spectrum(const std::vector<int>& primary_label, const std::vector<int>& second_label, int classes);

// SPEC §3 closed form for the gradient flow: max over pairs of the smallest
// separating non-zero eigenvalue (0 for a pair split by the zero mode).
double flow_rate(const PlainSpectrum& spectrum);

// Asymptotic decay rate of the minimum label distance per unit time t = lr * step
// under the integrator: mode lambda decays by |R(-lr lambda)| per step (R = 1 - z
// for gd, the degree-4 Taylor polynomial for rk4), a pair follows its slowest
// separating mode, the minimum distance its fastest pair. NaN when some mode
// grows (lr beyond critical_lr). Equals -ln(1 - lr rate)/lr of SPEC §3 for gd
// when lr * lambda_max <= 1, and tends to flow_rate as lr -> 0.
double integrator_rate(const PlainSpectrum& spectrum, IntegratorMethod method, double lr);

// Largest x with |R(-x)| <= 1 on [0, x]: 2 for gd, the real root of
// x^3 - 4x^2 + 12x - 24 for rk4.
double stability_interval(IntegratorMethod method);

// The plain model diverges for lr > stability_interval / lambda_max.
double critical_lr(const PlainSpectrum& spectrum, IntegratorMethod method);

} // namespace collapse::theory
