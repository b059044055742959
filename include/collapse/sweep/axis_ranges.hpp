// The values of {linspace = [a, b, n]} and {logspace = [a, b, n]} axes: the
// same doubles as NumPy's linspace(a, b, n) and logspace(a, b, n), so that a
// coordinate the user computes in Python selects the stored one exactly
// (docs/sweep-file.md, tested against a table NumPy wrote).
#pragma once

#include <cstdint>
#include <vector>

namespace collapse {

// NumPy's arithmetic: step = (b - a) / (n - 1), value i = i * step + a, the
// last value b exactly; when the step underflows to 0, (i / (n - 1)) * (b - a) + a.
// n = 1 gives {a}.
std::vector<double> numpy_linspace(double first, double last, std::int64_t count);

// 10 ** numpy_linspace(first, last, count), with the C library's pow: NumPy's
// portable power (docs/sweep-file.md on its AVX-512 loops).
std::vector<double> numpy_logspace(double first, double last, std::int64_t count);

} // namespace collapse
