#include "collapse/refine/bisection.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

namespace collapse::refine {
namespace {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

// The frustrated count floor(f N + 1/2) (SPEC §1).
long count_of(double frustration, int samples) {
    return static_cast<long>(std::floor(frustration * samples + 0.5));
}

double coordinate(double value, const AxisGeometry& axis) {
    return axis.scale == AxisScale::logarithmic ? std::log(value) : value;
}

double from_coordinate(double x, const AxisGeometry& axis) {
    return axis.scale == AxisScale::logarithmic ? std::exp(x) : x;
}

} // namespace

std::vector<std::size_t> all_crossings(const std::vector<double>& quantity, double level) {
    std::vector<std::size_t> crossings;
    for (std::size_t j = 0; j + 1 < quantity.size(); ++j) {
        const double a = quantity[j], b = quantity[j + 1];
        if (std::isfinite(a) && std::isfinite(b) && at_or_above(a, level) != at_or_above(b, level))
            crossings.push_back(j);
    }
    return crossings;
}

std::optional<std::size_t> first_crossing(const std::vector<double>& quantity, double level) {
    const std::vector<std::size_t> crossings = all_crossings(quantity, level);
    if (crossings.empty()) return std::nullopt;
    return crossings.front();
}

double bisection_midpoint(double a, double b, const AxisGeometry& axis) {
    switch (axis.scale) {
    case AxisScale::logarithmic: return std::sqrt(a * b);
    case AxisScale::frustrated_count: {
        // Probing between counts: a probe f = m / N has exactly m frustrated samples.
        const long m = (count_of(a, axis.samples) + count_of(b, axis.samples)) / 2;
        return static_cast<double>(m) / axis.samples;
    }
    case AxisScale::linear: break;
    }
    return 0.5 * (a + b);
}

bool bracket_done(double a, double b, double tol, const AxisGeometry& axis) {
    if (std::abs(a - b) <= tol) return true;
    return axis.scale == AxisScale::frustrated_count &&
           std::abs(count_of(a, axis.samples) - count_of(b, axis.samples)) <= 1;
}

double bracket_estimate(double a, double b, const AxisGeometry& axis) {
    if (axis.scale == AxisScale::frustrated_count) {
        const long ma = count_of(a, axis.samples), mb = count_of(b, axis.samples);
        if (std::abs(ma - mb) == 1) return (static_cast<double>(std::min(ma, mb)) + 0.5) / axis.samples;
    }
    return from_coordinate(0.5 * (coordinate(a, axis) + coordinate(b, axis)), axis);
}

double seed_fraction(const std::vector<std::int8_t>& outcomes) {
    int finished = 0, hits = 0;
    for (std::int8_t outcome : outcomes) {
        if (outcome < 0) continue;
        ++finished;
        hits += outcome > 0 ? 1 : 0;
    }
    return finished > 0 ? static_cast<double>(hits) / finished : nan;
}

double bootstrap_standard_error(std::vector<EvaluatedPoint> points, bool ascending, double level,
                                const AxisGeometry& axis, int resamples, std::uint64_t generator_seed) {
    if (points.size() < 2 || points.front().outcomes.empty() || resamples < 2) return nan;
    std::sort(points.begin(), points.end(), [&](const EvaluatedPoint& p, const EvaluatedPoint& q) {
        return ascending ? p.value < q.value : p.value > q.value;
    });
    const std::size_t seeds = points.front().outcomes.size();
    std::mt19937_64 generator(generator_seed);
    std::uniform_int_distribution<std::size_t> pick(0, seeds - 1);
    std::vector<std::size_t> sample(seeds);
    std::vector<double> quantity(points.size()), estimates;
    for (int r = 0; r < resamples; ++r) {
        for (std::size_t& s : sample) s = pick(generator);
        for (std::size_t p = 0; p < points.size(); ++p) {
            std::vector<std::int8_t> outcomes(seeds);
            for (std::size_t s = 0; s < seeds; ++s) outcomes[s] = points[p].outcomes[sample[s]];
            quantity[p] = seed_fraction(outcomes);
        }
        const auto j = first_crossing(quantity, level);
        if (!j) continue;
        const double xa = coordinate(points[*j].value, axis), xb = coordinate(points[*j + 1].value, axis);
        const double qa = quantity[*j], qb = quantity[*j + 1];
        estimates.push_back(from_coordinate(xa + (level - qa) / (qb - qa) * (xb - xa), axis));
    }
    if (estimates.size() * 2 < static_cast<std::size_t>(resamples)) return nan;
    // Shifted by the first estimate, so identical resamples give exactly 0.
    const double shift = estimates.front();
    double sum = 0, sum_squares = 0;
    for (double e : estimates) {
        sum += e - shift;
        sum_squares += (e - shift) * (e - shift);
    }
    const auto n = static_cast<double>(estimates.size());
    return std::sqrt(std::max(0.0, (sum_squares - sum * sum / n) / (n - 1)));
}

} // namespace collapse::refine
