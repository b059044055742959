#include "collapse/theory/selfconsistency.hpp"

#include <cmath>
#include <limits>

namespace collapse::theory {

std::vector<double> label_markov_matrix(const std::vector<int>& primary_label, const std::vector<int>& second_label,
                                        int classes) {
    const auto K = static_cast<std::size_t>(classes);
    std::vector<double> markov(K * K, 0.0), degree(K, 0.0);
    for (std::size_t i = 0; i < primary_label.size(); ++i) {
        const int first = primary_label[i], second = second_label[i];
        const double share = second >= 0 ? 0.5 : 1.0; // 1 / |labels(i)|
        for (int k : {first, second}) {
            if (k < 0) continue;
            const auto row = static_cast<std::size_t>(k);
            degree[row] += 1.0;
            markov[row * K + static_cast<std::size_t>(first)] += share;
            if (second >= 0) markov[row * K + static_cast<std::size_t>(second)] += share;
        }
    }
    for (std::size_t k = 0; k < K; ++k)
        if (degree[k] > 0)
            for (std::size_t l = 0; l < K; ++l) markov[k * K + l] /= degree[k];
    return markov;
}

double selfconsistency_residual(const double* head, const double* labels, const std::vector<double>& markov,
                                int classes, int dim) {
    const auto K = static_cast<std::size_t>(classes), d = static_cast<std::size_t>(dim);
    std::vector<double> projected(d), twice(d);
    double residual = 0.0, norm = 0.0;
    for (std::size_t k = 0; k < K; ++k) {
        const double* y = labels + k * d;
        for (std::size_t r = 0; r < d; ++r) {
            double sum = 0;
            for (std::size_t c = 0; c < d; ++c) sum += head[r * d + c] * y[c];
            projected[r] = sum;
        }
        for (std::size_t r = 0; r < d; ++r) {
            double sum = 0;
            for (std::size_t c = 0; c < d; ++c) sum += head[r * d + c] * projected[c];
            twice[r] = sum;
        }
        // Column k of Y^T P^T is sum_l P_kl y_l.
        for (std::size_t r = 0; r < d; ++r) {
            double target = 0;
            for (std::size_t l = 0; l < K; ++l) target += markov[k * K + l] * labels[l * d + r];
            residual += (twice[r] - target) * (twice[r] - target);
            norm += target * target;
        }
    }
    const double value = std::sqrt(residual) / std::sqrt(norm);
    return std::isfinite(value) ? value : std::numeric_limits<double>::quiet_NaN();
}

} // namespace collapse::theory
