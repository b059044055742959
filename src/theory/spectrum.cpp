#include "collapse/theory/spectrum.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

extern "C" void dsyev_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w,
                       double* work, const int* lwork, int* info);

namespace collapse::theory {

SymmetricEigen symmetric_eigen(const std::vector<double>& matrix, int size) {
    if (size < 0 || matrix.size() != static_cast<std::size_t>(size) * static_cast<std::size_t>(size))
        throw std::invalid_argument("symmetric_eigen: matrix is not " + std::to_string(size) + " x " + std::to_string(size));
    SymmetricEigen eigen;
    eigen.size = size;
    eigen.values.resize(static_cast<std::size_t>(size));
    if (size == 0) return eigen;
    // Symmetric, so the row-major input is also a valid column-major one.
    std::vector<double> columns = matrix;
    int lwork = -1, info = 0;
    double query = 0;
    dsyev_("V", "U", &size, columns.data(), &size, eigen.values.data(), &query, &lwork, &info);
    lwork = std::max(1, static_cast<int>(query));
    std::vector<double> work(static_cast<std::size_t>(lwork));
    dsyev_("V", "U", &size, columns.data(), &size, eigen.values.data(), work.data(), &lwork, &info);
    if (info != 0) throw std::runtime_error("LAPACK dsyev failed (info " + std::to_string(info) + ")");
    // LAPACK returns eigenvector j as column j of a column-major array.
    eigen.vectors.resize(columns.size());
    const auto n = static_cast<std::size_t>(size);
    for (std::size_t r = 0; r < n; ++r)
        for (std::size_t j = 0; j < n; ++j) eigen.vectors[r * n + j] = columns[j * n + r];
    return eigen;
}

std::vector<double> scaled_laplacian(const std::vector<int>& primary_label, const std::vector<int>& second_label,
                                     int classes) {
    const int samples = static_cast<int>(primary_label.size());
    const auto n = static_cast<std::size_t>(samples + classes);
    std::vector<double> laplacian(n * n, 0.0);
    int pairs = samples;
    for (int label : second_label) pairs += label >= 0 ? 1 : 0;
    const double weight = 1.0 / static_cast<double>(pairs);
    auto connect = [&](int sample, int label) {
        const auto i = static_cast<std::size_t>(sample), k = static_cast<std::size_t>(samples + label);
        laplacian[i * n + i] += weight;
        laplacian[k * n + k] += weight;
        laplacian[i * n + k] -= weight;
        laplacian[k * n + i] -= weight;
    };
    for (int i = 0; i < samples; ++i) {
        connect(i, primary_label[static_cast<std::size_t>(i)]);
        if (second_label[static_cast<std::size_t>(i)] >= 0) connect(i, second_label[static_cast<std::size_t>(i)]);
    }
    return laplacian;
}

PlainSpectrum plain_spectrum(const std::vector<int>& primary_label, const std::vector<int>& second_label, int classes) {
    const int samples = static_cast<int>(primary_label.size());
    const int n = samples + classes;
    const SymmetricEigen eigen = symmetric_eigen(scaled_laplacian(primary_label, second_label, classes), n);
    PlainSpectrum spectrum;
    spectrum.eigenvalues = eigen.values;
    // Tolerances relative to the spectrum's scale: dsyev is accurate to about
    // eps * lambda_max, and degenerate eigenvalues must be grouped into one
    // eigenspace because LAPACK may return any basis of it.
    const double scale = std::max(eigen.values.empty() ? 0.0 : eigen.values.back(), 1e-300);
    const double zero = 1e-9 * scale, same = 1e-8 * scale;
    // A separating eigenspace has a projection of e_k - e_l of order 1/n;
    // a non-separating one only rounding error (~eps^2).
    constexpr double separates = 1e-14;
    for (int k = 0; k < classes; ++k)
        for (int l = k + 1; l < classes; ++l) {
            LabelPairModes modes;
            for (int start = 0; start < n;) {
                int end = start + 1;
                while (end < n && eigen.values[end] - eigen.values[start] < same) ++end;
                double projection = 0.0;
                for (int j = start; j < end; ++j) {
                    const double difference = eigen.vector(samples + k, j) - eigen.vector(samples + l, j);
                    projection += difference * difference;
                }
                if (projection > separates) {
                    if (eigen.values[start] > zero) modes.separating.push_back(eigen.values[start]);
                    else modes.zero_mode_separates = true;
                }
                start = end;
            }
            spectrum.pairs.push_back(std::move(modes));
        }
    return spectrum;
}

namespace {

// Per-step amplification of a mode with eigenvalue lambda: z_{t+1} = R(-lr lambda) z_t.
double amplification(IntegratorMethod method, double x) {
    if (method == IntegratorMethod::gd) return 1.0 - x;
    return 1.0 - x + x * x / 2.0 - x * x * x / 6.0 + x * x * x * x / 24.0;
}

// Fastest pair's slowest mode, with `rate(lambda)` the decay rate of one mode.
template <class Rate>
double minimum_distance_rate(const PlainSpectrum& spectrum, Rate rate) {
    double fastest = 0.0;
    for (const LabelPairModes& modes : spectrum.pairs) {
        if (modes.zero_mode_separates || modes.separating.empty()) continue; // this pair keeps its distance
        double slowest = std::numeric_limits<double>::infinity();
        for (double lambda : modes.separating) slowest = std::min(slowest, rate(lambda));
        fastest = std::max(fastest, slowest);
    }
    return fastest;
}

} // namespace

double flow_rate(const PlainSpectrum& spectrum) {
    return minimum_distance_rate(spectrum, [](double lambda) { return lambda; });
}

double stability_interval(IntegratorMethod method) {
    // RK4: |R(-x)| = 1 at x(-1 + x/2 - x^2/6 + x^3/24) = 0, i.e. x^3 - 4x^2 + 12x - 24 = 0.
    return method == IntegratorMethod::gd ? 2.0 : 2.785293563405282;
}

double critical_lr(const PlainSpectrum& spectrum, IntegratorMethod method) {
    const double largest = spectrum.largest();
    return largest > 0 ? stability_interval(method) / largest : std::numeric_limits<double>::infinity();
}

double integrator_rate(const PlainSpectrum& spectrum, IntegratorMethod method, double lr) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    if (!(lr > 0)) return nan;
    for (double lambda : spectrum.eigenvalues)
        if (std::abs(amplification(method, lr * lambda)) > 1.0 + 1e-12) return nan; // some mode grows: diverges
    return minimum_distance_rate(spectrum, [&](double lambda) {
        const double factor = std::abs(amplification(method, lr * lambda));
        return factor > 0 ? -std::log(factor) / lr : std::numeric_limits<double>::infinity();
    });
}

} // namespace collapse::theory
