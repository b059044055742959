#include "collapse/sweep/axis_ranges.hpp"

#include <cmath>
#include <limits>

namespace collapse {

// numpy/_core/function_base.py, linspace with endpoint=True, step for step.
// The build compiles with -ffp-contract=off, so i * step + a is two
// roundings here as in NumPy, never one fused multiply-add.
std::vector<double> numpy_linspace(double first, double last, std::int64_t count) {
    std::vector<double> values;
    if (count < 1) return values;
    values.reserve(static_cast<std::size_t>(count));
    const double delta = last - first;
    const auto div = static_cast<double>(count - 1);
    if (count == 1) {
        values.push_back(0.0 * delta + first);
        return values;
    }
    const double step = delta / div;
    for (std::int64_t i = 0; i + 1 < count; ++i) {
        const auto index = static_cast<double>(i);
        // NumPy's branch for a step that underflows (gh-5437).
        const double offset = step == 0.0 ? (index / div) * delta : index * step;
        values.push_back(offset + first);
    }
    values.push_back(last);
    return values;
}

std::vector<double> numpy_logspace(double first, double last, std::int64_t count) {
    std::vector<double> values = numpy_linspace(first, last, count);
    for (double& value : values) value = std::pow(10.0, value);
    return values;
}

} // namespace collapse
