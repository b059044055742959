// Every kind of bad spec gives a SpecError naming the file, the line, the key
// and the reason.
#include "spec_test_support.hpp"

namespace collapse::test {
namespace {

struct BadSpec {
    const char* name;
    const char* text;
    const char* expected; // a substring of the message
};

void PrintTo(const BadSpec& bad, std::ostream* out) { *out << bad.name; }

class SweepSpecErrors : public ::testing::TestWithParam<BadSpec> {};

TEST_P(SweepSpecErrors, MessageNamesFileLineKeyAndReason) {
    const std::string message = spec_error(GetParam().text);
    EXPECT_NE(message.find(GetParam().expected), std::string::npos)
        << "message:  " << message << "\nexpected: " << GetParam().expected;
}

// Line numbers count from the first line of each text.
const BadSpec bad_specs[] = {
    // [model]
    {"unknown_key_suggests", "[model]\nkind = \"embedding\"\nclases = 4\n",
     "sweeps/x.toml:3: model.clases: unknown key 'clases' in [model] (did you mean 'classes'?)"},
    {"unknown_key_far", "[model]\nwhatever = 1\n", "sweeps/x.toml:2: model.whatever: unknown key 'whatever' in [model]"},
    {"key_of_other_section", "[model]\nlr = 0.1\n", "sweeps/x.toml:2: model.lr: unknown key 'lr' in [model]: it belongs in [grid]"},
    {"classes_string", "[model]\nclasses = \"4\"\n", "sweeps/x.toml:2: model.classes: expected an integer, got string"},
    {"classes_float", "[model]\nclasses = 4.0\n", "sweeps/x.toml:2: model.classes: expected an integer, got float"},
    {"classes_one", "\n[model]\nclasses = 1\n", "sweeps/x.toml:3: model.classes: value 1 must be >= 2"},
    {"classes_too_large", "[model]\nclasses = 3000000000\n", "sweeps/x.toml:2: model.classes: value 3000000000 too large"},
    {"samples_zero", "[model]\nsamples_per_class = 0\n", "sweeps/x.toml:2: model.samples_per_class: value 0 must be >= 1"},
    {"samples_overflow", "[model]\nclasses = 100000\nsamples_per_class = 100000\n",
     "sweeps/x.toml:3: model.samples_per_class: classes * samples_per_class = 10000000000 samples"},
    {"dim_zero", "[model]\ndim = 0\n", "sweeps/x.toml:2: model.dim: value 0 outside [1, 128]"},
    {"dim_too_large", "[model]\ndim = 129\n", "sweeps/x.toml:2: model.dim: value 129 outside [1, 128]"},
    {"init_scale_zero", "[model]\ninit_scale = 0.0\n", "sweeps/x.toml:2: model.init_scale: value 0 must be > 0"},
    {"init_scale_inf", "[model]\ninit_scale = inf\n", "sweeps/x.toml:2: model.init_scale: value inf is not a finite number"},
    {"stop_gradient_int", "[model]\nstop_gradient = 1\n", "sweeps/x.toml:2: model.stop_gradient: expected a boolean, got integer"},
    {"kind_typo", "[model]\nkind = \"embeding\"\n",
     "sweeps/x.toml:2: model.kind: unknown value \"embeding\" (expected \"embedding\" or \"teacher_student\")"},
    {"kind_not_string", "[model]\nkind = 1\n", "sweeps/x.toml:2: model.kind: expected a string, got integer"},
    {"input_dim_missing", "\n\n[model]\nkind = \"teacher_student\"\n",
     "sweeps/x.toml:3: model.input_dim: required when kind = \"teacher_student\""},
    {"input_dim_for_embedding", "[model]\nkind = \"embedding\"\ninput_dim = 16\n",
     "sweeps/x.toml:3: model.input_dim: only applies to kind = \"teacher_student\""},
    {"input_dim_for_default_kind", "[model]\ninput_dim = 16\n", "sweeps/x.toml:2: model.input_dim: only applies"},
    {"input_dim_zero", "[model]\nkind = \"teacher_student\"\ninput_dim = 0\n", "sweeps/x.toml:3: model.input_dim: value 0 must be >= 1"},
    // [integrator]
    {"method_unknown", "[integrator]\nmethod = \"euler\"\n", "sweeps/x.toml:2: integrator.method: unknown value \"euler\""},
    {"max_steps_zero", "[integrator]\nmax_steps = 0\n", "sweeps/x.toml:2: integrator.max_steps: value 0 must be >= 1"},
    {"precision_unknown", "[integrator]\nprecision = \"float16\"\n",
     "sweeps/x.toml:2: integrator.precision: unknown value \"float16\" (expected \"float32\" or \"float64\")"},
    {"integrator_unknown_key", "[integrator]\nsteps = 10\n", "sweeps/x.toml:2: integrator.steps: unknown key 'steps' in [integrator]"},
    // [collapse]
    {"metric_unknown", "[collapse]\nmetric = \"accuracy\"\n", "sweeps/x.toml:2: collapse.metric: unknown value \"accuracy\""},
    {"threshold_zero", "[collapse]\nthreshold = 0\n", "sweeps/x.toml:2: collapse.threshold: value 0 outside (0, 1)"},
    {"threshold_one", "[collapse]\nthreshold = 1.0\n", "sweeps/x.toml:2: collapse.threshold: value 1 outside (0, 1)"},
    {"stop_on_collapse_string", "[collapse]\nstop_on_collapse = \"yes\"\n",
     "sweeps/x.toml:2: collapse.stop_on_collapse: expected a boolean, got string"},
    // [output]
    {"record_points_one", "[output]\nrecord_points = 1\n", "sweeps/x.toml:2: output.record_points: value 1 outside [2, 1000000]"},
    {"compression_ten", "[output]\ncompression = 10\n", "sweeps/x.toml:2: output.compression: value 10 outside [0, 9]"},
    {"compression_negative", "[output]\ncompression = -1\n", "sweeps/x.toml:2: output.compression: value -1 outside [0, 9]"},
    {"save_samples_int", "[output]\nsave_samples = 1\n", "sweeps/x.toml:2: output.save_samples: expected a boolean, got integer"},
    // [grid] scalars and lists
    {"frustration_scalar", "[model]\ndim = 8\n\n[grid]\nlr = 0.1\n\nfrustration = 1.5\n",
     "sweeps/x.toml:7: grid.frustration: value 1.5 outside [0, 1]"},
    {"frustration_list_element", "[grid]\nfrustration = [\n  0.0,\n  0.1,\n  -0.2,\n]\n",
     "sweeps/x.toml:5: grid.frustration: value -0.2 outside [0, 1] (list element 3)"},
    {"frustration_nan", "[grid]\nfrustration = nan\n", "sweeps/x.toml:2: grid.frustration: value nan is not a finite number"},
    {"head_dim_negative", "[grid]\nhead_dim = -1\n", "sweeps/x.toml:2: grid.head_dim: value -1 must be >= 0"},
    {"head_dim_float", "[grid]\nhead_dim = [0, 2.5]\n", "sweeps/x.toml:2: grid.head_dim: expected an integer, got float (list element 2)"},
    {"lr_zero", "[grid]\nlr = 0\n", "sweeps/x.toml:2: grid.lr: value 0 must be > 0"},
    {"lr_string", "[grid]\nlr = \"fast\"\n", "sweeps/x.toml:2: grid.lr: expected a number, got string"},
    {"lr_nested_list", "[grid]\nlr = [[0.1]]\n", "sweeps/x.toml:2: grid.lr: expected a number, got array (list element 1)"},
    {"stop_gradient_axis_int", "[grid]\nstop_gradient = [true, 0]\n",
     "sweeps/x.toml:2: grid.stop_gradient: expected a boolean, got integer (list element 2)"},
    {"init_scale_axis_negative", "[grid]\ninit_scale = [1, -1]\n", "sweeps/x.toml:2: grid.init_scale: value -1 must be > 0"},
    {"empty_list", "[grid]\nlr = []\n", "sweeps/x.toml:2: grid.lr: empty list"},
    {"duplicate_values", "[grid]\nlr = [0.1, 0.2,\n  0.1]\n", "sweeps/x.toml:3: grid.lr: duplicate value 0.1 (values 1 and 3)"},
    {"duplicate_bools", "[grid]\nstop_gradient = [true, true]\n", "sweeps/x.toml:2: grid.stop_gradient: duplicate value true"},
    {"seeds_zero", "[grid]\nseeds = 0\n", "sweeps/x.toml:2: grid.seeds: value 0 outside [1, 1000000000]"},
    {"seeds_list", "[grid]\nseeds = [1, 2]\n", "sweeps/x.toml:2: grid.seeds: expected an integer, got array"},
    {"seed_negative", "[grid]\nseed = -1\n", "sweeps/x.toml:2: grid.seed: value -1 must be >= 0"},
    // [grid] keys that cannot be axes
    {"shape_key_classes", "[grid]\nclasses = [4, 8]\n",
     "sweeps/x.toml:2: grid.classes: 'classes' cannot be a grid axis: it changes array shapes"},
    {"shape_key_dim", "[grid]\ndim = 8\n", "sweeps/x.toml:2: grid.dim: 'dim' cannot be a grid axis: it changes array shapes"},
    {"shape_key_samples", "[grid]\nsamples_per_class = [10, 20]\n", "grid.samples_per_class: 'samples_per_class' cannot be a grid axis: it changes array shapes"},
    {"shape_key_input_dim", "[grid]\ninput_dim = [10, 20]\n", "grid.input_dim: 'input_dim' cannot be a grid axis: it changes array shapes"},
    {"shape_key_kind", "[grid]\nkind = [\"embedding\"]\n", "grid.kind: 'kind' cannot be a grid axis: it changes array shapes"},
    {"other_section_key", "[grid]\nmax_steps = [10, 20]\n",
     "sweeps/x.toml:2: grid.max_steps: 'max_steps' cannot be a grid axis: it belongs in [integrator]"},
    {"grid_typo", "[grid]\nfrustation = 0.1\n",
     "sweeps/x.toml:2: grid.frustation: unknown key 'frustation' in [grid] (did you mean 'frustration'?)"},
    {"axis_also_in_model", "[model]\nstop_gradient = true\n\n[grid]\nstop_gradient = [false, true]\n",
     "sweeps/x.toml:5: grid.stop_gradient: also set in [model] (line 2)"},
    {"init_scale_also_in_model", "[model]\ninit_scale = 2.0\n[grid]\ninit_scale = 1.0\n",
     "sweeps/x.toml:4: grid.init_scale: also set in [model] (line 2)"},
    // ranges
    {"linspace_two_values", "[grid]\nfrustration = {linspace = [0, 1]}\n",
     "sweeps/x.toml:2: grid.frustration: linspace must be exactly [a, b, n] (first, last, count), got 2 values"},
    {"linspace_four_values", "[grid]\nfrustration = {linspace = [0, 1, 3, 4]}\n",
     "grid.frustration: linspace must be exactly [a, b, n] (first, last, count), got 4 values"},
    {"linspace_not_list", "[grid]\nfrustration = {linspace = 3}\n", "grid.frustration: linspace must be exactly [a, b, n] (first, last, count), got an integer"},
    {"linspace_count_zero", "[grid]\nfrustration = {linspace = [0, 1, 0]}\n", "sweeps/x.toml:2: grid.frustration: linspace n: value 0 outside [1, 1000000]"},
    {"linspace_count_float", "[grid]\nfrustration = {linspace = [0, 1, 3.0]}\n", "grid.frustration: linspace n: expected an integer, got float"},
    {"linspace_start_string", "[grid]\nfrustration = {linspace = [\"0\", 1, 3]}\n", "grid.frustration: linspace a: expected a number, got string"},
    {"range_extra_key", "[grid]\nfrustration = {linspace = [0, 1, 3], n = 3}\n",
     "grid.frustration: expected {linspace = [a, b, n]} or {logspace = [a, b, n]}, got a table with 2 keys"},
    {"range_typo", "[grid]\nfrustration = {linspce = [0, 1, 3]}\n",
     "grid.frustration: unknown key 'linspce' in an axis range (did you mean 'linspace'?)"},
    {"linspace_out_of_range", "[grid]\nfrustration = {linspace = [0, 2, 3]}\n",
     "sweeps/x.toml:2: grid.frustration: value 2 outside [0, 1] (linspace value 3 of 3)"},
    {"logspace_lr_ok_but_frustration_not", "[grid]\nfrustration = {logspace = [-1, 1, 3]}\n",
     "grid.frustration: value 10 outside [0, 1] (logspace value 3 of 3)"},
    {"linspace_duplicates", "[grid]\nlr = {linspace = [0.1, 0.1, 3]}\n", "grid.lr: duplicate value 0.1"},
    {"linspace_head_dim_fraction", "[grid]\nhead_dim = {linspace = [0, 5, 3]}\n",
     "grid.head_dim: value 2.5 is not an integer (head_dim needs integers) (linspace value 2 of 3)"},
    {"linspace_bool", "[grid]\nstop_gradient = {linspace = [0, 1, 2]}\n", "grid.stop_gradient: expected a boolean, got table"},
    {"logspace_overflow", "[grid]\nlr = {logspace = [0, 400, 2]}\n", "grid.lr: value inf is not a finite number (logspace value 2 of 2)"},
    // file structure
    {"unknown_section", "[modle]\ndim = 8\n", "sweeps/x.toml:1: modle: unknown section [modle] (did you mean [model]?)"},
    {"unknown_section_far", "[plots]\n", "sweeps/x.toml:1: plots: unknown section [plots]"},
    {"key_outside_section", "seeds = 4\n", "sweeps/x.toml:1: seeds: 'seeds' must be inside a section: it belongs in [grid]"},
    {"section_not_table", "model = 3\n", "sweeps/x.toml:1: model: expected a section [model], got integer"},
    {"subtable_in_model", "[model.extra]\nx = 1\n", "model.extra: unknown key 'extra' in [model]"},
    {"malformed_toml", "[model]\ndim = 8\nclasses = = 4\n", "sweeps/x.toml:3: malformed TOML: "},
    {"malformed_duplicate_key", "[model]\ndim = 8\ndim = 9\n", "sweeps/x.toml:3: malformed TOML: "},
};

INSTANTIATE_TEST_SUITE_P(EveryRule, SweepSpecErrors, ::testing::ValuesIn(bad_specs),
                         [](const ::testing::TestParamInfo<BadSpec>& param_info) { return std::string(param_info.param.name); });

TEST(SweepSpecErrorList, EveryProblemIsReportedInLineOrder) {
    const std::string message = spec_error("[output]\ncompression = 12\n[model]\nclases = 4\ndim = 0\n");
    EXPECT_EQ(message,
              "sweeps/x.toml:2: output.compression: value 12 outside [0, 9]\n"
              "sweeps/x.toml:4: model.clases: unknown key 'clases' in [model] (did you mean 'classes'?)\n"
              "sweeps/x.toml:5: model.dim: value 0 outside [1, 128]");
}

TEST(SweepSpecErrorList, MessageUsesTheSourceNameGiven) {
    try {
        parse_sweep_spec_text("[grid]\nlr = -1\n", "/tmp/elsewhere/run.toml");
        FAIL() << "expected a SpecError";
    } catch (const SpecError& error) {
        EXPECT_EQ(std::string(error.what()), "/tmp/elsewhere/run.toml:2: grid.lr: value -1 must be > 0");
    }
}

TEST(SweepSpecErrorList, SpecErrorIsARuntimeError) {
    EXPECT_THROW(parse("[grid]\nlr = -1\n"), std::runtime_error);
}

} // namespace
} // namespace collapse::test
