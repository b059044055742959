// {linspace|logspace = [a, b, n]} against NumPy: data/numpy_axis_values.txt
// holds np.linspace / np.logspace for 30 argument triples as exact hex floats
// (written by numpy_axis_table.py; ctest sweep.numpy_table_current checks it
// is still what NumPy computes when the venv has NumPy).
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

#include "collapse/sweep/axis_ranges.hpp"
#include "spec_test_support.hpp"

namespace collapse::test {
namespace {

struct NumpyCase {
    std::string kind, first, last; // a and b as written (Python repr)
    std::int64_t count = 0;
    std::vector<double> values;
};

std::vector<NumpyCase> numpy_table() {
    std::ifstream in(COLLAPSE_NUMPY_TABLE);
    std::vector<NumpyCase> cases;
    for (std::string line; std::getline(in, line);) {
        std::istringstream row(line);
        NumpyCase each;
        row >> each.kind >> each.first >> each.last >> each.count;
        for (std::string hex; row >> hex;) each.values.push_back(std::stod(hex)); // strtod reads hex floats exactly
        cases.push_back(each);
    }
    return cases;
}

std::string bits(double value) {
    std::ostringstream out;
    out << std::hexfloat << value;
    return out.str();
}

TEST(SweepSpecAxes, RangesMatchNumPyTable) {
    const std::vector<NumpyCase> cases = numpy_table();
    ASSERT_EQ(cases.size(), 30u) << COLLAPSE_NUMPY_TABLE;
    int parsed = 0;
    for (const NumpyCase& each : cases) {
        const std::string call = each.kind + "(" + each.first + ", " + each.last + ", " + std::to_string(each.count) + ")";
        SCOPED_TRACE(call);
        ASSERT_EQ(static_cast<std::int64_t>(each.values.size()), each.count);
        const double a = std::stod(each.first), b = std::stod(each.last);
        const std::vector<double> values =
            each.kind == "linspace" ? numpy_linspace(a, b, each.count) : numpy_logspace(a, b, each.count);
        ASSERT_EQ(values.size(), each.values.size());
        for (std::size_t i = 0; i < values.size(); ++i)
            EXPECT_EQ(bits(values[i]), bits(each.values[i])) << "value " << i;

        // The parser, from the decimals as a user writes them, on an axis that takes the values.
        const bool unit = std::all_of(values.begin(), values.end(), [](double v) { return v >= 0 && v <= 1; });
        const bool positive = std::all_of(values.begin(), values.end(), [](double v) { return v > 0; });
        if (!unit && !positive) continue;
        const std::string name = unit ? "frustration" : "lr";
        const Axis axis = axis_named(parse("[grid]\n" + name + " = {" + each.kind + " = [" + each.first + ", " +
                                           each.last + ", " + std::to_string(each.count) + "]}\n"),
                                     name);
        ASSERT_EQ(axis.values.size(), each.values.size());
        for (std::size_t i = 0; i < values.size(); ++i)
            EXPECT_EQ(bits(axis.values[i]), bits(each.values[i])) << "parsed value " << i;
        ++parsed;
    }
    EXPECT_GE(parsed, 25);
}

TEST(SweepSpecAxes, LinspaceUnderflowingStepFollowsNumPy) {
    // (b - a) / 2 rounds to 0: NumPy then scales i / (n - 1) by b - a (gh-5437).
    const double tiny = 4.9406564584124654e-324;
    EXPECT_EQ(numpy_linspace(0.0, tiny, 3), (std::vector<double>{0.0, 0.0, tiny}));
    EXPECT_EQ(numpy_linspace(0.0, 2 * tiny, 5), (std::vector<double>{0.0, 0.0, tiny, 2 * tiny, 2 * tiny})) << "as np.linspace(0, 1e-323, 5)";
    EXPECT_EQ(numpy_linspace(0.25, 0.75, 1), std::vector<double>{0.25});
    EXPECT_TRUE(numpy_linspace(0.0, 1.0, 0).empty());
}

} // namespace
} // namespace collapse::test
