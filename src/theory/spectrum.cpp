#include "collapse/theory/spectrum.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>

extern "C" void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w,
                        double* work, const int* lwork, int* iwork, const int* liwork, int* info);

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
    // Divide and conquer (dsyevd): with eigenvectors several times faster than
    // dsyev's QR iteration at a few hundred rows, to the same accuracy.
    int lwork = -1, liwork = -1, info = 0, iquery = 0;
    double query = 0;
    dsyevd_("V", "U", &size, columns.data(), &size, eigen.values.data(), &query, &lwork, &iquery, &liwork, &info);
    lwork = std::max(1, static_cast<int>(query));
    liwork = std::max(1, iquery);
    std::vector<double> work(static_cast<std::size_t>(lwork));
    std::vector<int> iwork(static_cast<std::size_t>(liwork));
    dsyevd_("V", "U", &size, columns.data(), &size, eigen.values.data(), work.data(), &lwork, iwork.data(), &liwork,
            &info);
    if (info != 0) throw std::runtime_error("LAPACK dsyevd failed (info " + std::to_string(info) + ")");
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

namespace {

// The labels joined by frustrated samples: its connected components are those
// of the whole graph (every sample hangs on a label), and its bipartite
// components (isolated labels included) are the null space of A_2: a 2-colouring
// s with s_c = -s_c' on every edge gives (e_c + e_c')^T s = 0.
struct LabelGraph {
    std::vector<int> component;   // per label
    int components = 0;
    int bipartite_components = 0;
};

LabelGraph label_graph(const std::vector<int>& primary_label, const std::vector<int>& second_label, int classes) {
    std::vector<std::vector<int>> neighbours(static_cast<std::size_t>(classes));
    for (std::size_t i = 0; i < primary_label.size(); ++i)
        if (second_label[i] >= 0) {
            neighbours[static_cast<std::size_t>(primary_label[i])].push_back(second_label[i]);
            neighbours[static_cast<std::size_t>(second_label[i])].push_back(primary_label[i]);
        }
    LabelGraph graph;
    graph.component.assign(static_cast<std::size_t>(classes), -1);
    std::vector<int> colour(static_cast<std::size_t>(classes), 0), stack;
    for (int start = 0; start < classes; ++start) {
        if (graph.component[static_cast<std::size_t>(start)] >= 0) continue;
        bool bipartite = true;
        graph.component[static_cast<std::size_t>(start)] = graph.components;
        colour[static_cast<std::size_t>(start)] = 1;
        stack.assign(1, start);
        while (!stack.empty()) {
            const int label = stack.back();
            stack.pop_back();
            for (int next : neighbours[static_cast<std::size_t>(label)]) {
                const auto n = static_cast<std::size_t>(next);
                if (graph.component[n] < 0) {
                    graph.component[n] = graph.components;
                    colour[n] = -colour[static_cast<std::size_t>(label)];
                    stack.push_back(next);
                } else if (colour[n] == colour[static_cast<std::size_t>(label)]) {
                    bipartite = false; // an odd cycle (or a label frustrated with itself, which the draws exclude)
                }
            }
        }
        graph.bipartite_components += bipartite ? 1 : 0;
        ++graph.components;
    }
    return graph;
}

} // namespace

PlainSpectrum plain_spectrum(const std::vector<int>& primary_label, const std::vector<int>& second_label, int classes) {
    const int samples = static_cast<int>(primary_label.size());
    if (second_label.size() != primary_label.size() || classes < 1)
        throw std::invalid_argument("plain_spectrum: label vectors differ in length or no classes");
    const auto K = static_cast<std::size_t>(classes);
    PlainSpectrum spectrum;
    spectrum.classes = classes;

    // a_c (unfrustrated samples per label) and A_2 = sum over frustrated samples of (e_c + e_c')(e_c + e_c')^T.
    std::vector<double> unfrustrated(K, 0.0), couplings(K * K, 0.0);
    std::int64_t frustrated = 0;
    for (int i = 0; i < samples; ++i) {
        const int c = primary_label[static_cast<std::size_t>(i)], other = second_label[static_cast<std::size_t>(i)];
        if (c < 0 || c >= classes || other >= classes || other == c)
            throw std::invalid_argument("plain_spectrum: sample " + std::to_string(i) + " has an invalid label");
        if (other < 0) {
            unfrustrated[static_cast<std::size_t>(c)] += 1;
            continue;
        }
        ++frustrated;
        for (int a : {c, other})
            for (int b : {c, other}) couplings[static_cast<std::size_t>(a) * K + static_cast<std::size_t>(b)] += 1;
    }
    spectrum.pair_count = samples + frustrated;
    const double inverse_pairs = 1.0 / static_cast<double>(spectrum.pair_count);

    const LabelGraph graph = label_graph(primary_label, second_label, classes);
    spectrum.label_component = graph.component;
    spectrum.zero_modes = graph.components;
    // A_2 = W diag(mu) W^T; its rank is known exactly from the graph, so the
    // r largest eigenpairs give F = W_r diag(sqrt(mu_r)) with F F^T = A_2.
    const int rank = classes - graph.bipartite_components;
    const SymmetricEigen coupling_eigen = symmetric_eigen(couplings, classes);
    spectrum.frustrated_rows = rank;

    for (std::size_t c = 0; c < K; ++c)
        if (unfrustrated[c] > 0) {
            spectrum.unfrustrated_label.push_back(static_cast<int>(c));
            spectrum.unfrustrated_weight.push_back(1.0 / std::sqrt(unfrustrated[c]));
        }
    const int unfrustrated_rows = static_cast<int>(spectrum.unfrustrated_label.size());
    const int size = unfrustrated_rows + rank + classes;
    spectrum.size = size;
    spectrum.sample_only_unit = static_cast<std::int64_t>(samples - frustrated) - unfrustrated_rows;
    spectrum.sample_only_two = frustrated - rank;

    const auto n = static_cast<std::size_t>(size);
    std::vector<double> reduced(n * n, 0.0);
    auto couple = [&](std::size_t row, std::size_t label_row, double weight) {
        reduced[row * n + label_row] = -weight * inverse_pairs;
        reduced[label_row * n + row] = -weight * inverse_pairs;
    };
    const std::size_t labels_at = n - K;
    for (int g = 0; g < unfrustrated_rows; ++g) {
        const auto row = static_cast<std::size_t>(g), c = static_cast<std::size_t>(spectrum.unfrustrated_label[row]);
        reduced[row * n + row] = inverse_pairs;
        couple(row, labels_at + c, std::sqrt(unfrustrated[c]));
    }
    spectrum.frustrated_projection.assign(static_cast<std::size_t>(rank) * K, 0.0);
    for (int j = 0; j < rank; ++j) {
        const int column = classes - rank + j;
        const double mu = coupling_eigen.values[static_cast<std::size_t>(column)];
        if (!(mu > 0)) throw std::runtime_error("plain_spectrum: A_2 has fewer positive eigenvalues than its rank");
        const double root = std::sqrt(mu);
        const auto row = static_cast<std::size_t>(unfrustrated_rows + j);
        reduced[row * n + row] = 2.0 * inverse_pairs;
        for (std::size_t c = 0; c < K; ++c) {
            const double w = coupling_eigen.vector(static_cast<int>(c), column);
            couple(row, labels_at + c, w * root);
            spectrum.frustrated_projection[static_cast<std::size_t>(j) * K + c] = w / root;
        }
    }
    for (std::size_t c = 0; c < K; ++c)
        reduced[(labels_at + c) * n + labels_at + c] = (unfrustrated[c] + couplings[c * K + c]) * inverse_pairs;

    SymmetricEigen eigen = symmetric_eigen(reduced, size);
    // The zero modes are the component indicators, one per component and the
    // smallest eigenvalues of a positive semi-definite matrix: exactly 0.
    for (int j = 0; j < spectrum.zero_modes; ++j) eigen.values[static_cast<std::size_t>(j)] = 0.0;
    spectrum.eigenvalues = std::move(eigen.values);
    spectrum.vectors = std::move(eigen.vectors);

    // Degenerate eigenvalues are grouped into one eigenspace, because LAPACK
    // may return any basis of it; the tolerance is relative to the spectrum's
    // scale, to which dsyev is accurate.
    const double same = 1e-8 * std::max(spectrum.largest(), 1e-300);
    // A separating eigenspace has a projection of e_k - e_l of order 1/n; a
    // non-separating one only rounding error (~eps^2).
    constexpr double separates = 1e-14;
    for (int k = 0; k < classes; ++k)
        for (int l = k + 1; l < classes; ++l) {
            LabelPairModes modes;
            modes.zero_mode_separates = graph.component[static_cast<std::size_t>(k)] !=
                                        graph.component[static_cast<std::size_t>(l)];
            for (int start = spectrum.zero_modes; start < size;) {
                int end = start + 1;
                while (end < size && spectrum.eigenvalues[static_cast<std::size_t>(end)] -
                                             spectrum.eigenvalues[static_cast<std::size_t>(start)] < same)
                    ++end;
                double projection = 0.0;
                for (int j = start; j < end; ++j) {
                    const double difference =
                        spectrum.vector(spectrum.label_row(k), j) - spectrum.vector(spectrum.label_row(l), j);
                    projection += difference * difference;
                }
                if (projection > separates) {
                    modes.separating.push_back(spectrum.eigenvalues[static_cast<std::size_t>(start)]);
                    for (int j = start; j < end; ++j) modes.modes.push_back(j);
                }
                start = end;
            }
            spectrum.pairs.push_back(std::move(modes));
        }
    return spectrum;
}

double PlainSpectrum::largest() const {
    const double scale = pair_count > 0 ? 1.0 / static_cast<double>(pair_count) : 0.0;
    double largest = eigenvalues.empty() ? 0.0 : eigenvalues.back();
    if (sample_only_two > 0) largest = std::max(largest, 2.0 * scale);
    if (sample_only_unit > 0) largest = std::max(largest, scale);
    return largest;
}

std::vector<double> PlainSpectrum::all_distinct_eigenvalues() const {
    std::vector<double> values = eigenvalues;
    const double scale = pair_count > 0 ? 1.0 / static_cast<double>(pair_count) : 0.0;
    if (sample_only_unit > 0) values.push_back(scale);
    if (sample_only_two > 0) values.push_back(2.0 * scale);
    std::sort(values.begin(), values.end());
    values.erase(std::unique(values.begin(), values.end()), values.end());
    return values;
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
    for (double lambda : spectrum.all_distinct_eigenvalues())
        if (std::abs(amplification(method, lr * lambda)) > 1.0 + 1e-12) return nan; // some mode grows: diverges
    return minimum_distance_rate(spectrum, [&](double lambda) {
        const double factor = std::abs(amplification(method, lr * lambda));
        return factor > 0 ? -std::log(factor) / lr : std::numeric_limits<double>::infinity();
    });
}

} // namespace collapse::theory
