// Axis values from scalars, lists and ranges, and the order of the axes.
#include <cmath>

#include "spec_test_support.hpp"

namespace collapse::test {
namespace {

TEST(SweepSpecAxes, LinspaceValuesAreExact) {
    const Axis axis = axis_named(parse("[grid]\nfrustration = {linspace = [0, 0.5, 26]}\n"), "frustration");
    ASSERT_EQ(axis.values.size(), 26u);
    EXPECT_EQ(axis.type, Axis::Type::real);
    EXPECT_FALSE(axis.log_spaced);
    // (b - a) * i / (n - 1) from a = 0 is one rounding: the nearest double to 0.02 * i.
    EXPECT_EQ(axis.values[0], 0.0);
    EXPECT_EQ(axis.values[1], 0.02);
    EXPECT_EQ(axis.values[5], 0.1);
    EXPECT_EQ(axis.values[10], 0.2);
    EXPECT_EQ(axis.values[15], 0.3);
    EXPECT_EQ(axis.values[25], 0.5);
}

TEST(SweepSpecAxes, LinspaceEndsExactlyAtTheLastValue) {
    const Axis axis = axis_named(parse("[grid]\nfrustration = {linspace = [0, 0.3, 4]}\n"), "frustration");
    ASSERT_EQ(axis.values.size(), 4u);
    EXPECT_EQ(axis.values[0], 0.0);
    EXPECT_DOUBLE_EQ(axis.values[1], 0.1);
    EXPECT_DOUBLE_EQ(axis.values[2], 0.2);
    EXPECT_EQ(axis.values[3], 0.3);
}

TEST(SweepSpecAxes, LinspaceRunsDownwardAndWithOnePoint) {
    EXPECT_EQ(axis_named(parse("[grid]\nlr = {linspace = [1, 0.5, 3]}\n"), "lr").values,
              (std::vector<double>{1.0, 0.75, 0.5}));
    EXPECT_EQ(axis_named(parse("[grid]\nlr = {linspace = [0.3, 0.9, 1]}\n"), "lr").values, std::vector<double>{0.3});
}

TEST(SweepSpecAxes, LogspaceIsBaseTenAndMarksTheAxis) {
    const Axis axis = axis_named(parse("[grid]\nlr = {logspace = [-2, 0, 9]}\n"), "lr");
    ASSERT_EQ(axis.values.size(), 9u);
    EXPECT_TRUE(axis.log_spaced);
    const double expected[] = {0.01, 0.017782794100389229, 0.031622776601683791, 0.056234132519034911, 0.1,
                               0.17782794100389229, 0.31622776601683794, 0.56234132519034907, 1.0};
    for (std::size_t i = 0; i < 9; ++i) EXPECT_DOUBLE_EQ(axis.values[i], expected[i]) << "value " << i;
    EXPECT_EQ(axis.values[8], 1.0);
}

TEST(SweepSpecAxes, LogspaceWithOnePointIsStillLogSpaced) {
    const Axis axis = axis_named(parse("[grid]\nlr = {logspace = [-1, 3, 1]}\n"), "lr");
    ASSERT_EQ(axis.values.size(), 1u);
    EXPECT_DOUBLE_EQ(axis.values[0], 0.1);
    EXPECT_TRUE(axis.log_spaced);
}

TEST(SweepSpecAxes, IntegerAxisFromRanges) {
    const Axis linear = axis_named(parse("[grid]\nhead_dim = {linspace = [0, 16, 5]}\n"), "head_dim");
    EXPECT_EQ(linear.type, Axis::Type::integer);
    EXPECT_EQ(linear.values, (std::vector<double>{0, 4, 8, 12, 16}));
    const Axis logarithmic = axis_named(parse("[grid]\nhead_dim = {logspace = [0, 3, 4]}\n"), "head_dim");
    EXPECT_EQ(logarithmic.values, (std::vector<double>{1, 10, 100, 1000}));
    EXPECT_TRUE(logarithmic.log_spaced);
}

TEST(SweepSpecAxes, RangeAsASubTable) {
    const Axis axis = axis_named(parse("[grid.frustration]\nlinspace = [0, 1, 3]\n"), "frustration");
    EXPECT_EQ(axis.values, (std::vector<double>{0.0, 0.5, 1.0}));
}

TEST(SweepSpecAxes, ScalarsGiveLengthOneAxes) {
    const SweepSpec spec = parse("[grid]\nlr = 1\nhead_dim = 4\nstop_gradient = true\ninit_scale = 0.5\n");
    EXPECT_EQ(axis_named(spec, "lr").values, std::vector<double>{1.0}); // an integer for a real key
    EXPECT_EQ(axis_named(spec, "head_dim").values, std::vector<double>{4.0});
    EXPECT_EQ(axis_named(spec, "stop_gradient").values, std::vector<double>{1.0});
    EXPECT_EQ(axis_named(spec, "stop_gradient").type, Axis::Type::boolean);
    EXPECT_EQ(axis_named(spec, "init_scale").values, std::vector<double>{0.5});
    EXPECT_EQ(axis_named(spec, "init_scale").type, Axis::Type::real);
}

TEST(SweepSpecAxes, ListsKeepTheirOrder) {
    const SweepSpec spec = parse("[grid]\nfrustration = [0.3, 0, 0.1]\nstop_gradient = [true, false]\n");
    EXPECT_EQ(axis_named(spec, "frustration").values, (std::vector<double>{0.3, 0.0, 0.1}));
    EXPECT_EQ(axis_named(spec, "stop_gradient").values, (std::vector<double>{1.0, 0.0}));
}

TEST(SweepSpecAxes, GeometricListsAreMarkedLogSpaced) {
    const auto log_spaced = [](const std::string& grid_line, const char* name) {
        return axis_named(parse("[grid]\n" + grid_line + "\n"), name).log_spaced;
    };
    EXPECT_TRUE(log_spaced("lr = [0.01, 0.1, 1]", "lr"));
    EXPECT_TRUE(log_spaced("lr = [1, 0.5, 0.25, 0.125]", "lr"));
    EXPECT_TRUE(log_spaced("lr = [0.001, 0.0031622776601683794, 0.01]", "lr"));
    EXPECT_TRUE(log_spaced("head_dim = [1, 2, 4, 8]", "head_dim"));
    EXPECT_FALSE(log_spaced("lr = [0.1, 1]", "lr"));             // two points say nothing
    EXPECT_FALSE(log_spaced("lr = [0.1, 0.2, 0.3]", "lr"));      // linear
    EXPECT_FALSE(log_spaced("lr = [0.01, 0.1, 1.01]", "lr"));    // off by more than 1e-6
    EXPECT_FALSE(log_spaced("head_dim = [0, 2, 4, 8]", "head_dim")); // 0 is not positive
    EXPECT_FALSE(log_spaced("frustration = 0.1", "frustration"));
}

TEST(SweepSpecAxisOrder, FileOrderWithMissingCoreAxesInFront) {
    const SweepSpec spec = parse("[grid]\nstop_gradient = [false, true]\nlr = [0.1, 0.2]\ninit_scale = [1, 2]\n");
    EXPECT_EQ(axis_names(spec),
              (std::vector<std::string>{"frustration", "head_dim", "stop_gradient", "lr", "init_scale"}));
}

TEST(SweepSpecAxisOrder, FileOrderIsNotAlphabetical) {
    const SweepSpec spec = parse(
        "[grid]\nstop_gradient = [false, true]\nlr = 0.5\nseeds = 3\nhead_dim = [0, 8]\nfrustration = [0, 0.1]\n");
    EXPECT_EQ(axis_names(spec), (std::vector<std::string>{"stop_gradient", "lr", "head_dim", "frustration"}));
    EXPECT_EQ(spec.seeds, 3);
}

TEST(SweepSpecAxisOrder, OnlyMissingCoreAxesMoveToTheFront) {
    const SweepSpec spec = parse("[grid]\ninit_scale = [1, 2]\nhead_dim = [0, 2]\n");
    EXPECT_EQ(axis_names(spec), (std::vector<std::string>{"frustration", "lr", "init_scale", "head_dim"}));
    EXPECT_EQ(axis_named(spec, "frustration").values, std::vector<double>{0.0});
    EXPECT_EQ(axis_named(spec, "lr").values, std::vector<double>{0.1});
}

TEST(SweepSpecAxisOrder, SubTablesCountAtTheirHeaderLine) {
    const SweepSpec spec = parse("[grid]\nlr = 0.1\n[grid.frustration]\nlinspace = [0, 1, 3]\n[grid.head_dim]\n"
                                 "linspace = [0, 4, 2]\n");
    EXPECT_EQ(axis_names(spec), (std::vector<std::string>{"lr", "frustration", "head_dim"}));
}

TEST(SweepSpecAxes, ModelKeysThatAreNotAxesBecomeDefaults) {
    const SweepSpec spec = parse("[model]\nstop_gradient = true\ninit_scale = 0.5\n");
    EXPECT_TRUE(spec.defaults.stop_gradient);
    EXPECT_EQ(spec.defaults.init_scale, 0.5);
    EXPECT_EQ(axis_names(spec), (std::vector<std::string>{"frustration", "head_dim", "lr"}));
}

} // namespace
} // namespace collapse::test
