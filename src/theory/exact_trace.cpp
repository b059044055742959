#include "collapse/theory/exact_trace.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

namespace collapse::theory {
namespace {

// Euclidean norm, scaled so that distances far below 1e-154 do not underflow when squared.
double scaled_norm(const double* vector, std::size_t size) {
    double largest = 0;
    for (std::size_t e = 0; e < size; ++e) largest = std::max(largest, std::abs(vector[e]));
    if (!(largest > 0) || !std::isfinite(largest)) return largest;
    double squared = 0;
    for (std::size_t e = 0; e < size; ++e) squared += (vector[e] / largest) * (vector[e] / largest);
    return largest * std::sqrt(squared);
}

} // namespace

PlainSolution::PlainSolution(PlainSpectrum spectrum, const std::vector<int>& primary_label,
                             const std::vector<int>& second_label, const double* samples, const double* labels, int dim)
    : spectrum_(std::move(spectrum)), dim_(dim) {
    const auto d = static_cast<std::size_t>(dim);
    const auto K = static_cast<std::size_t>(spectrum_.classes);
    const std::size_t N = primary_label.size();
    // The initial state in the reduced basis: the normalised sums of each
    // label's unfrustrated samples, the projected per-label sums of the
    // frustrated samples, then the labels themselves.
    std::vector<double> unfrustrated_sum(K * d, 0.0), frustrated_sum(K * d, 0.0);
    for (std::size_t i = 0; i < N; ++i) {
        const auto c = static_cast<std::size_t>(primary_label[i]);
        const double* x = samples + i * d;
        if (second_label[i] < 0) {
            for (std::size_t e = 0; e < d; ++e) unfrustrated_sum[c * d + e] += x[e];
            continue;
        }
        const auto other = static_cast<std::size_t>(second_label[i]);
        for (std::size_t e = 0; e < d; ++e) {
            frustrated_sum[c * d + e] += x[e];
            frustrated_sum[other * d + e] += x[e];
        }
    }
    const auto n = static_cast<std::size_t>(spectrum_.size);
    std::vector<double> reduced(n * d, 0.0);
    std::size_t row = 0;
    for (std::size_t g = 0; g < spectrum_.unfrustrated_label.size(); ++g, ++row) {
        const auto c = static_cast<std::size_t>(spectrum_.unfrustrated_label[g]);
        for (std::size_t e = 0; e < d; ++e) reduced[row * d + e] = spectrum_.unfrustrated_weight[g] * unfrustrated_sum[c * d + e];
    }
    for (int j = 0; j < spectrum_.frustrated_rows; ++j, ++row)
        for (std::size_t c = 0; c < K; ++c) {
            const double weight = spectrum_.frustrated_projection[static_cast<std::size_t>(j) * K + c];
            for (std::size_t e = 0; e < d; ++e) reduced[row * d + e] += weight * frustrated_sum[c * d + e];
        }
    for (std::size_t c = 0; c < K; ++c, ++row)
        for (std::size_t e = 0; e < d; ++e) reduced[row * d + e] = labels[c * d + e];

    coefficients_.assign(n * d, 0.0);
    for (std::size_t j = 0; j < n; ++j)
        for (std::size_t r = 0; r < n; ++r) {
            const double weight = spectrum_.vectors[r * n + j];
            for (std::size_t e = 0; e < d; ++e) coefficients_[j * d + e] += weight * reduced[r * d + e];
        }

    // Conserved means: labels and samples of each component, averaged.
    const auto components = static_cast<std::size_t>(spectrum_.zero_modes);
    component_mean_.assign(components * d, 0.0);
    std::vector<double> members(components, 0.0);
    for (std::size_t c = 0; c < K; ++c) {
        const auto component = static_cast<std::size_t>(spectrum_.label_component[c]);
        members[component] += 1;
        for (std::size_t e = 0; e < d; ++e) component_mean_[component * d + e] += labels[c * d + e];
    }
    for (std::size_t i = 0; i < N; ++i) {
        const auto component = static_cast<std::size_t>(spectrum_.label_component[static_cast<std::size_t>(primary_label[i])]);
        members[component] += 1;
        for (std::size_t e = 0; e < d; ++e) component_mean_[component * d + e] += samples[i * d + e];
    }
    for (std::size_t component = 0; component < components; ++component)
        for (std::size_t e = 0; e < d; ++e) component_mean_[component * d + e] /= members[component];

    mode_size_.assign(n, 0.0);
    for (std::size_t j = 0; j < n; ++j) {
        double label_part = 0, coefficient = 0;
        for (int k = 0; k < spectrum_.classes; ++k)
            label_part = std::max(label_part, std::abs(spectrum_.vector(spectrum_.label_row(k), static_cast<int>(j))));
        for (std::size_t e = 0; e < d; ++e) coefficient += coefficients_[j * d + e] * coefficients_[j * d + e];
        mode_size_[j] = label_part * std::sqrt(coefficient);
    }
}

double PlainSolution::mode_factor(IntegratorMethod method, double lr, std::int64_t step, double lambda) {
    const auto steps = static_cast<double>(step);
    if (method == IntegratorMethod::gd) return std::pow(1.0 - lr * lambda, steps);
    return std::exp(-lr * steps * lambda);
}

std::vector<double> PlainSolution::label_embeddings(IntegratorMethod method, double lr, std::int64_t step) const {
    const auto d = static_cast<std::size_t>(dim_);
    const int classes = spectrum_.classes;
    std::vector<double> labels(static_cast<std::size_t>(classes) * d);
    for (int k = 0; k < classes; ++k) {
        double* y = labels.data() + static_cast<std::size_t>(k) * d;
        const double* mean = component_mean_.data() + static_cast<std::size_t>(spectrum_.label_component[static_cast<std::size_t>(k)]) * d;
        for (std::size_t e = 0; e < d; ++e) y[e] = mean[e];
        for (int j = spectrum_.zero_modes; j < spectrum_.size; ++j) {
            const double weight = mode_factor(method, lr, step, spectrum_.eigenvalues[static_cast<std::size_t>(j)]) *
                                  spectrum_.vector(spectrum_.label_row(k), j);
            for (std::size_t e = 0; e < d; ++e) y[e] += weight * coefficients_[static_cast<std::size_t>(j) * d + e];
        }
    }
    return labels;
}

double PlainSolution::pair_distance(const std::vector<double>& factor, int k, int l, std::size_t pair,
                                    double* difference) const {
    const auto d = static_cast<std::size_t>(dim_);
    const LabelPairModes& modes = spectrum_.pairs[pair];
    const auto ck = static_cast<std::size_t>(spectrum_.label_component[static_cast<std::size_t>(k)]);
    const auto cl = static_cast<std::size_t>(spectrum_.label_component[static_cast<std::size_t>(l)]);
    for (std::size_t e = 0; e < d; ++e)
        difference[e] = ck == cl ? 0.0 : component_mean_[ck * d + e] - component_mean_[cl * d + e];
    for (int j : modes.modes) {
        const double weight = factor[static_cast<std::size_t>(j)] *
                              (spectrum_.vector(spectrum_.label_row(k), j) - spectrum_.vector(spectrum_.label_row(l), j));
        for (std::size_t e = 0; e < d; ++e) difference[e] += weight * coefficients_[static_cast<std::size_t>(j) * d + e];
    }
    return scaled_norm(difference, d);
}

double PlainSolution::minimum_label_distance(IntegratorMethod method, double lr, std::int64_t step) const {
    const int classes = spectrum_.classes;
    if (classes < 2) return std::numeric_limits<double>::quiet_NaN();
    const auto d = static_cast<std::size_t>(dim_);
    const auto K = static_cast<std::size_t>(classes);
    std::vector<double> factor(static_cast<std::size_t>(spectrum_.size), 0.0), difference(d);
    double spread = 0; // sum over modes of |g_j| max_k |v_jk| |c_j|: what round-off in y_k is relative to
    for (int j = spectrum_.zero_modes; j < spectrum_.size; ++j) {
        const auto jj = static_cast<std::size_t>(j);
        factor[jj] = mode_factor(method, lr, step, spectrum_.eigenvalues[jj]);
        spread += std::abs(factor[jj]) * mode_size_[jj];
    }
    // First every pair from the labels' decaying parts, O(K^2 d + K size d):
    // accurate to `error`, which only matters once the distances have fallen
    // to round-off of the embeddings. The pairs within 2 error of the smallest
    // are then summed over their own separating modes, exactly.
    std::vector<double> decaying(K * d, 0.0);
    for (std::size_t k = 0; k < K; ++k)
        for (int j = spectrum_.zero_modes; j < spectrum_.size; ++j) {
            const double weight = factor[static_cast<std::size_t>(j)] * spectrum_.vector(spectrum_.label_row(static_cast<int>(k)), j);
            for (std::size_t e = 0; e < d; ++e) decaying[k * d + e] += weight * coefficients_[static_cast<std::size_t>(j) * d + e];
        }
    const double error = 4.0 * (spectrum_.size + 2) * std::numeric_limits<double>::epsilon() * spread;
    std::vector<double> direct(K * (K - 1) / 2);
    double smallest_direct = std::numeric_limits<double>::infinity();
    std::size_t pair = 0;
    for (std::size_t k = 0; k < K; ++k)
        for (std::size_t l = k + 1; l < K; ++l, ++pair) {
            const auto ck = static_cast<std::size_t>(spectrum_.label_component[k]);
            const auto cl = static_cast<std::size_t>(spectrum_.label_component[l]);
            for (std::size_t e = 0; e < d; ++e)
                difference[e] = (ck == cl ? 0.0 : component_mean_[ck * d + e] - component_mean_[cl * d + e]) +
                                decaying[k * d + e] - decaying[l * d + e];
            direct[pair] = scaled_norm(difference.data(), d);
            smallest_direct = std::min(smallest_direct, direct[pair]);
        }
    const double cut = smallest_direct * (1 + 1e-12) + 2 * error;
    double smallest = std::numeric_limits<double>::infinity();
    pair = 0;
    for (int k = 0; k < classes; ++k)
        for (int l = k + 1; l < classes; ++l, ++pair)
            if (direct[pair] <= cut) smallest = std::min(smallest, pair_distance(factor, k, l, pair, difference.data()));
    return smallest;
}

} // namespace collapse::theory
