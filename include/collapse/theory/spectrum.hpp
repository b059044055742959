// Closed-form theory of the plain model (h = 0, embedding kind): the flow is
// linear, Z' = -(1/M) L_G Z, so its stability limit, its asymptotic collapse
// rate and its exact solution follow from the spectrum of (1/M) L_G.
//
// The spectrum is computed at O(K^3) cost whatever N (docs/model.md, "The
// spectrum at any size"): samples with the same labels are interchangeable,
// so an orthonormal change of basis on the sample nodes splits L_G into
// sample-only modes (eigenvalue exactly 1 or 2, zero on every label) and a
// symmetric matrix of at most 3K rows whose eigenpairs are all the modes that
// touch a label: the symmetric linearisation of the cubic matrix polynomial
// P(lambda) of issue 13. It holds for every graph, degenerate ones included.
#pragma once

#include <cstdint>
#include <vector>

#include "collapse/config.hpp"

namespace collapse::theory {

// Eigenpairs of a dense symmetric matrix, eigenvalues ascending.
struct SymmetricEigen {
    int size = 0;
    std::vector<double> values;
    std::vector<double> vectors; // row-major: vectors[row * size + j] is entry `row` of eigenvector j
    double vector(int row, int j) const { return vectors[static_cast<std::size_t>(row) * size + j]; }
};

// LAPACK dsyevd on a row-major symmetric n x n matrix. Throws std::runtime_error on failure.
SymmetricEigen symmetric_eigen(const std::vector<double>& matrix, int size);

// The dense (1/M) L_G over nodes [samples..., labels...] for the pair set D:
// (i, c_i) for every sample and (i, second_label[i]) where second_label[i] >= 0.
// O((N + K)^2) memory: for tests and small cross-checks, not the engine.
std::vector<double> scaled_laplacian(const std::vector<int>& primary_label, const std::vector<int>& second_label,
                                     int classes);

// What the rate formulas and the exact solution need per label pair (k < l).
struct LabelPairModes {
    bool zero_mode_separates = false; // different connected components: the pair never decays
    std::vector<double> separating;   // non-zero eigenvalues whose eigenspace separates y_k from y_l, one per eigenspace
    std::vector<int> modes;           // reduced eigenvectors of those eigenspaces (columns of PlainSpectrum::vectors)
};

// The reduced basis, row by row: first one row per label c with a_c > 0
// unfrustrated samples (the normalised sum of those samples), then r rows
// spanning the frustrated samples' coupling to the labels, then the K labels.
struct PlainSpectrum {
    int classes = 0;
    std::int64_t pair_count = 0;                 // M
    std::vector<int> unfrustrated_label;         // per unfrustrated row: its label c
    std::vector<double> unfrustrated_weight;     // per unfrustrated row: 1/sqrt(a_c)
    int frustrated_rows = 0;                     // r = rank of A_2
    std::vector<double> frustrated_projection;   // r x K row-major: maps per-label sums of frustrated samples to rows
    int size = 0;                                // reduced rows, at most 3K
    std::vector<double> eigenvalues;             // of the reduced (1/M) matrix, ascending; 0 exactly for the zero modes
    std::vector<double> vectors;                 // size x size row-major, column j = eigenvector j
    int zero_modes = 0;                          // connected components; eigenvalues [0, zero_modes) are the zero modes
    std::vector<int> label_component;            // per label: its connected component
    std::int64_t sample_only_unit = 0;           // multiplicity of the sample-only eigenvalue 1/M
    std::int64_t sample_only_two = 0;            // multiplicity of the sample-only eigenvalue 2/M
    std::vector<LabelPairModes> pairs;           // (0,1), (0,2), ..., (K-2,K-1)

    int label_row(int label) const { return size - classes + label; }
    double vector(int row, int j) const { return vectors[static_cast<std::size_t>(row) * size + j]; }
    // Largest eigenvalue of (1/M) L_G, sample-only modes included.
    double largest() const;
    // Every distinct eigenvalue of (1/M) L_G: the reduced ones and the sample-only ones present.
    std::vector<double> all_distinct_eigenvalues() const;
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
