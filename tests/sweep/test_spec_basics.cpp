// Defaults, every key read back, and reading files from disk.
#include <cstdint>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "spec_test_support.hpp"

namespace collapse::test {
namespace {

TEST(SweepSpecDefaults, EmptyFileGivesEveryDefault) {
    const SweepSpec spec = parse("");
    EXPECT_EQ(spec.shape.kind, ModelKind::embedding);
    EXPECT_EQ(spec.shape.classes, 4);
    EXPECT_EQ(spec.shape.samples_per_class, 50);
    EXPECT_EQ(spec.shape.dim, 8);
    EXPECT_EQ(spec.shape.input_dim, 0);
    EXPECT_EQ(spec.defaults.init_scale, 1.0);
    EXPECT_FALSE(spec.defaults.stop_gradient);
    EXPECT_EQ(spec.integrator.method, IntegratorMethod::gd);
    EXPECT_EQ(spec.integrator.max_steps, 20000);
    EXPECT_EQ(spec.integrator.precision, Precision::float64);
    EXPECT_EQ(spec.seeds, 1);
    EXPECT_EQ(spec.master_seed, 0u);
    EXPECT_EQ(spec.collapse.metric, CollapseMetric::label);
    EXPECT_EQ(spec.collapse.threshold, 0.05);
    EXPECT_TRUE(spec.collapse.stop_on_collapse);
    EXPECT_EQ(spec.output.record_points, 128);
    EXPECT_FALSE(spec.output.save_samples);
    EXPECT_FALSE(spec.output.save_initial);
    EXPECT_EQ(spec.output.compression, 4);
    EXPECT_EQ(spec.source_path, spec_name);
    EXPECT_TRUE(spec.overrides.empty());

    // The three core axes are always present, with their default values.
    ASSERT_EQ(axis_names(spec), (std::vector<std::string>{"frustration", "head_dim", "lr"}));
    EXPECT_EQ(spec.axes[0].values, std::vector<double>{0.0});
    EXPECT_EQ(spec.axes[0].type, Axis::Type::real);
    EXPECT_EQ(spec.axes[1].values, std::vector<double>{0.0});
    EXPECT_EQ(spec.axes[1].type, Axis::Type::integer);
    EXPECT_EQ(spec.axes[2].values, std::vector<double>{0.1});
    EXPECT_EQ(spec.axes[2].type, Axis::Type::real);
    for (const Axis& axis : spec.axes) EXPECT_FALSE(axis.log_spaced);
}

TEST(SweepSpecDefaults, EmptySectionsAreAllowed) {
    const SweepSpec spec = parse("[model]\n[integrator]\n[grid]\n[collapse]\n[output]\n");
    EXPECT_EQ(spec.shape.classes, 4);
    EXPECT_EQ(spec.axes.size(), 3u);
}

TEST(SweepSpecKeys, EveryKeyIsRead) {
    const std::string text = R"(
[model]
kind = "teacher_student"
classes = 3
samples_per_class = 7
dim = 5
init_scale = 2          # an integer is fine for a real key
stop_gradient = true
input_dim = 11

[integrator]
method = "rk4"
max_steps = 123
precision = "float32"

[grid]
frustration = 0.25
head_dim = 3
lr = 0.01
seeds = 6
seed = 9223372036854775807

[collapse]
metric = "projected"
threshold = 0.2
stop_on_collapse = false

[output]
record_points = 2
save_samples = true
save_initial = true
compression = 9
)";
    const SweepSpec spec = parse(text);
    EXPECT_EQ(spec.shape.kind, ModelKind::teacher_student);
    EXPECT_EQ(spec.shape.classes, 3);
    EXPECT_EQ(spec.shape.samples_per_class, 7);
    EXPECT_EQ(spec.shape.dim, 5);
    EXPECT_EQ(spec.shape.input_dim, 11);
    EXPECT_EQ(spec.defaults.init_scale, 2.0);
    EXPECT_TRUE(spec.defaults.stop_gradient);
    EXPECT_EQ(spec.integrator.method, IntegratorMethod::rk4);
    EXPECT_EQ(spec.integrator.max_steps, 123);
    EXPECT_EQ(spec.integrator.precision, Precision::float32);
    EXPECT_EQ(spec.seeds, 6);
    EXPECT_EQ(spec.master_seed, std::uint64_t{9223372036854775807ULL});
    EXPECT_EQ(spec.collapse.metric, CollapseMetric::projected);
    EXPECT_EQ(spec.collapse.threshold, 0.2);
    EXPECT_FALSE(spec.collapse.stop_on_collapse);
    EXPECT_EQ(spec.output.record_points, 2);
    EXPECT_TRUE(spec.output.save_samples);
    EXPECT_TRUE(spec.output.save_initial);
    EXPECT_EQ(spec.output.compression, 9);
    EXPECT_EQ(axis_named(spec, "frustration").values, std::vector<double>{0.25});
    EXPECT_EQ(axis_named(spec, "head_dim").values, std::vector<double>{3.0});
    EXPECT_EQ(axis_named(spec, "lr").values, std::vector<double>{0.01});
    EXPECT_EQ(spec.source_text, text);
}

TEST(SweepSpecKeys, BoundaryValuesAreAccepted) {
    const SweepSpec spec = parse(
        "[model]\nclasses = 2\nsamples_per_class = 1\ndim = 1\n"
        "[integrator]\nmax_steps = 1\n[grid]\nfrustration = [0, 1]\nhead_dim = 0\nseed = 0\n"
        "[output]\ncompression = 0\n");
    EXPECT_EQ(spec.shape.classes, 2);
    EXPECT_EQ(axis_named(spec, "frustration").values, (std::vector<double>{0.0, 1.0}));
}

class SweepSpecFile : public ::testing::Test {
protected:
    void SetUp() override {
        directory_ = std::filesystem::temp_directory_path() /
                     ("collapse_sweep_test_" + std::to_string(::getpid()) + "_" +
                      ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(directory_);
    }
    void TearDown() override { std::filesystem::remove_all(directory_); }

    std::string write(const std::string& name, const std::string& text) {
        const std::filesystem::path path = directory_ / name;
        std::ofstream(path, std::ios::binary) << text;
        return path.string();
    }

    std::filesystem::path directory_;
};

TEST_F(SweepSpecFile, ReadsTheFileAndKeepsItsTextUnchanged) {
    const std::string text = "# comment\r\n[grid]\r\nlr = [0.1, 0.2]   # trailing\r\n";
    const std::string path = write("spec.toml", text);
    const SweepSpec spec = parse_sweep_spec_file(path);
    EXPECT_EQ(spec.source_path, path);
    EXPECT_EQ(spec.source_text, text);
    EXPECT_EQ(axis_named(spec, "lr").values, (std::vector<double>{0.1, 0.2}));
}

TEST_F(SweepSpecFile, ErrorsNameThePathGiven) {
    const std::string path = write("bad.toml", "[grid]\n\nfrustration = 2\n");
    try {
        parse_sweep_spec_file(path);
        FAIL() << "expected a SpecError";
    } catch (const SpecError& error) {
        EXPECT_EQ(std::string(error.what()), path + ":3: grid.frustration: value 2 outside [0, 1]");
    }
}

TEST_F(SweepSpecFile, MissingFileIsASpecErrorNamingThePath) {
    const std::string path = (directory_ / "does_not_exist.toml").string();
    try {
        parse_sweep_spec_file(path);
        FAIL() << "expected a SpecError";
    } catch (const SpecError& error) {
        EXPECT_NE(std::string(error.what()).find(path), std::string::npos) << error.what();
        EXPECT_NE(std::string(error.what()).find("No such file"), std::string::npos) << error.what();
    }
}

TEST_F(SweepSpecFile, DirectoryIsASpecErrorNamingThePath) {
    try {
        parse_sweep_spec_file(directory_.string());
        FAIL() << "expected a SpecError";
    } catch (const SpecError& error) {
        EXPECT_NE(std::string(error.what()).find(directory_.string()), std::string::npos) << error.what();
    }
}

} // namespace
} // namespace collapse::test
