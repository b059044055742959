// --set section.key=value overrides: applied before the checks, reported as --set.
#include "spec_test_support.hpp"

namespace collapse::test {
namespace {

const char* const base_spec = R"([model]
classes = 4
samples_per_class = 20

[integrator]
max_steps = 4000

[grid]
frustration = [0, 0.1]
lr = 0.5
head_dim = [0, 8]
seeds = 2
)";

TEST(SweepSpecOverrides, ReplaceValuesAndKeepTheFileText) {
    const std::vector<std::string> overrides = {"grid.lr=[0.1,0.2]", "integrator.max_steps=100",
                                                "model.kind=\"teacher_student\"", "model.input_dim = 16"};
    const SweepSpec spec = parse(base_spec, overrides);
    EXPECT_EQ(axis_named(spec, "lr").values, (std::vector<double>{0.1, 0.2}));
    EXPECT_EQ(spec.integrator.max_steps, 100);
    EXPECT_EQ(spec.shape.kind, ModelKind::teacher_student);
    EXPECT_EQ(spec.shape.input_dim, 16);
    EXPECT_EQ(spec.source_text, base_spec);
    EXPECT_EQ(spec.overrides, overrides);
}

TEST(SweepSpecOverrides, AReplacedAxisKeepsItsPlaceInTheFile) {
    const SweepSpec spec = parse(base_spec, {"grid.lr={logspace=[-2,0,3]}", "grid.frustration={linspace=[0,0.3,4]}"});
    EXPECT_EQ(axis_names(spec), (std::vector<std::string>{"frustration", "lr", "head_dim"}));
    EXPECT_TRUE(axis_named(spec, "lr").log_spaced);
    ASSERT_EQ(axis_named(spec, "frustration").values.size(), 4u);
    EXPECT_EQ(axis_named(spec, "frustration").values[3], 0.3);
}

TEST(SweepSpecOverrides, NewAxesComeAfterTheFileAxesInSetOrder) {
    const SweepSpec spec = parse("[grid]\nhead_dim = [0, 8]\nfrustration = [0, 0.1]\n",
                                 {"grid.init_scale=[1.0, 2.0]", "grid.stop_gradient=[false,true]"});
    EXPECT_EQ(axis_names(spec),
              (std::vector<std::string>{"lr", "head_dim", "frustration", "init_scale", "stop_gradient"}));
}

TEST(SweepSpecOverrides, CreateMissingSections) {
    const SweepSpec spec = parse("", {"collapse.threshold=0.1", "output.save_samples=true", "grid.seeds=5"});
    EXPECT_EQ(spec.collapse.threshold, 0.1);
    EXPECT_TRUE(spec.output.save_samples);
    EXPECT_EQ(spec.seeds, 5);
}

TEST(SweepSpecOverrides, ABareWordIsAString) {
    // The shell has already removed the quotes of --set model.kind="teacher_student".
    const SweepSpec spec = parse(base_spec, {"model.kind=teacher_student", "model.input_dim=8", "integrator.method=rk4"});
    EXPECT_EQ(spec.shape.kind, ModelKind::teacher_student);
    EXPECT_EQ(spec.integrator.method, IntegratorMethod::rk4);
}

TEST(SweepSpecOverrides, TheLastOneWins) {
    EXPECT_EQ(parse(base_spec, {"grid.seeds=3", "grid.seeds=7"}).seeds, 7);
}

TEST(SweepSpecOverrides, CanRepairABadFileValue) {
    EXPECT_EQ(axis_named(parse("[grid]\nlr = -1\n", {"grid.lr=0.2"}), "lr").values, std::vector<double>{0.2});
}

struct BadOverride {
    const char* name;
    std::vector<std::string> overrides;
    const char* expected;
};

void PrintTo(const BadOverride& bad, std::ostream* out) { *out << bad.name; }

class SweepSpecOverrideErrors : public ::testing::TestWithParam<BadOverride> {};

TEST_P(SweepSpecOverrideErrors, AreReportedAgainstTheOverride) {
    const std::string message = spec_error(base_spec, GetParam().overrides);
    EXPECT_EQ(message.rfind("--set ", 0), 0u) << message; // not against the file
    EXPECT_NE(message.find(GetParam().expected), std::string::npos)
        << "message:  " << message << "\nexpected: " << GetParam().expected;
}

const BadOverride bad_overrides[] = {
    {"value_out_of_range", {"grid.lr=-1"}, "--set grid.lr: value -1 must be > 0"},
    {"list_element", {"grid.lr=[0.1, 0]"}, "--set grid.lr: value 0 must be > 0 (list element 2)"},
    {"wrong_type", {"integrator.max_steps=1e3"}, "--set integrator.max_steps: expected an integer, got float"},
    {"bare_word_for_number", {"integrator.max_steps=many"}, "--set integrator.max_steps: expected an integer, got string"},
    {"malformed_value", {"grid.lr=[0.1,"}, "--set grid.lr: malformed value '[0.1,': "},
    {"two_values", {"grid.lr=0.1\nseeds = 3"}, "--set grid.lr: malformed value"},
    {"no_equals", {"grid.lr"}, "--set grid.lr: expected section.key=value"},
    {"no_section", {"lr=0.1"}, "--set lr: expected section.key=value"},
    {"nested_key", {"grid.frustration.linspace=[0,1,3]"}, "--set grid.frustration.linspace: expected section.key=value"},
    {"missing_value", {"grid.lr="}, "--set grid.lr: missing value after '='"},
    {"unknown_section", {"modle.dim=4"}, "--set modle.dim: unknown section [modle] (did you mean [model]?)"},
    {"unknown_key", {"model.clases=4"}, "--set model.clases: unknown key 'clases' in [model] (did you mean 'classes'?)"},
    {"shape_key_axis", {"grid.classes=[4,8]"}, "--set grid.classes: 'classes' cannot be a grid axis: it changes array shapes"},
    {"bad_range", {"grid.frustration={linspace=[0,0.3]}"}, "--set grid.frustration: linspace must be exactly [a, b, n]"},
    {"bad_kind", {"model.kind=\"student\""}, "--set model.kind: unknown value \"student\""},
};

INSTANTIATE_TEST_SUITE_P(EveryRule, SweepSpecOverrideErrors, ::testing::ValuesIn(bad_overrides),
                         [](const ::testing::TestParamInfo<BadOverride>& param_info) { return std::string(param_info.param.name); });

TEST(SweepSpecOverrideErrorList, FileAndOverrideErrorsTogether) {
    const std::string message = spec_error("[grid]\nlr = 0.1\nhead_dim = -2\n", {"grid.lr=0"});
    EXPECT_EQ(message,
              "sweeps/x.toml:3: grid.head_dim: value -2 must be >= 0\n"
              "--set grid.lr: value 0 must be > 0");
}

TEST(SweepSpecOverrideErrorList, ModelKeySetBySetClashesWithAGridAxis) {
    const std::string message = spec_error("[grid]\n\nstop_gradient = [false, true]\n", {"model.stop_gradient=true"});
    EXPECT_EQ(message, "sweeps/x.toml:3: grid.stop_gradient: also set by --set model.stop_gradient; "
                       "a key is either fixed in [model] or an axis in [grid]");
}

TEST(SweepSpecOverrideErrorList, RequiredKeyWithoutASectionInTheFileIsLineZero) {
    const std::string message = spec_error("[grid]\nlr = 0.1\n", {"model.kind=\"teacher_student\""});
    EXPECT_EQ(message, "sweeps/x.toml:0: model.input_dim: required when kind = \"teacher_student\"");
}

} // namespace
} // namespace collapse::test
