// The Grid built from a parsed spec, the validate summary, and the example
// sweep files shipped in sweeps/.
#include <filesystem>

#include "collapse/sweep/grid.hpp"
#include "spec_test_support.hpp"

namespace collapse::test {
namespace {

TEST(SweepSpecGrid, ShapeAndParamsAreRowMajorWithSeedLast) {
    const SweepSpec spec = parse(R"([model]
init_scale = 0.5
[grid]
frustration = [0, 0.1, 0.2]
head_dim = [0, 8]
stop_gradient = [false, true]
seeds = 3
)");
    const Grid grid(spec);
    // lr was not written, so it is a length-1 axis at the front.
    EXPECT_EQ(axis_names(spec), (std::vector<std::string>{"lr", "frustration", "head_dim", "stop_gradient"}));
    EXPECT_EQ(grid.shape(), (std::vector<std::int64_t>{1, 3, 2, 2, 3}));
    EXPECT_EQ(grid.size(), 36);

    const auto expect_params = [&](std::int64_t flat, double frustration, int head_dim, bool stop_gradient,
                                   std::int64_t seed) {
        const TrajectoryParams params = grid.params(flat);
        EXPECT_EQ(params.frustration, frustration) << "flat index " << flat;
        EXPECT_EQ(params.head_dim, head_dim) << "flat index " << flat;
        EXPECT_EQ(params.lr, 0.1) << "flat index " << flat;
        EXPECT_EQ(params.stop_gradient, stop_gradient) << "flat index " << flat;
        EXPECT_EQ(params.init_scale, 0.5) << "flat index " << flat;
        EXPECT_EQ(params.seed_index, seed) << "flat index " << flat;
    };
    expect_params(0, 0.0, 0, false, 0);
    expect_params(1, 0.0, 0, false, 1);  // the seed varies fastest
    expect_params(3, 0.0, 0, true, 0);
    expect_params(6, 0.0, 8, false, 0);
    expect_params(12, 0.1, 0, false, 0);
    expect_params(20, 0.1, 8, false, 2); // 1*12 + 1*6 + 0*3 + 2
    expect_params(35, 0.2, 8, true, 2);
}

TEST(SweepSpecGrid, InitScaleAxisReachesTheParams) {
    const SweepSpec spec = parse("[grid]\ninit_scale = [0.5, 2]\nseeds = 2\n");
    const Grid grid(spec);
    EXPECT_EQ(grid.shape(), (std::vector<std::int64_t>{1, 1, 1, 2, 2}));
    EXPECT_EQ(grid.params(2).init_scale, 2.0);
    EXPECT_EQ(grid.params(2).seed_index, 0);
}

TEST(SweepSpecSummary, ListsModelAxesCountAndCost) {
    const SweepSpec spec = parse(R"([model]
classes = 4
samples_per_class = 20
dim = 8
[integrator]
max_steps = 4000
[grid]
head_dim = [0, 8]
frustration = {linspace = [0, 0.5, 26]}
lr = {logspace = [-2, 0, 3]}
)");
    const std::string summary = describe_sweep(spec);
    EXPECT_NE(summary.find("embedding: K = 4 classes, n = 20 samples per class (N = 80), d = 8"), std::string::npos)
        << summary;
    EXPECT_NE(summary.find("gd, max_steps 4000, float64"), std::string::npos) << summary;
    EXPECT_NE(summary.find("head_dim     2 values: 0, 8\n"), std::string::npos) << summary;
    EXPECT_NE(summary.find("26 values: 0, 0.02, 0.04, ..., 0.48, 0.5\n"), std::string::npos) << summary;
    EXPECT_NE(summary.find("3 values: 0.01, 0.1, 1  (log-spaced)"), std::string::npos) << summary;
    EXPECT_NE(summary.find("1 seed, master seed 0"), std::string::npos) << summary;
    EXPECT_NE(summary.find("trajectories  156 (2 x 26 x 3 x 1)"), std::string::npos) << summary;
    // 156 * 4000 steps; per step 4 N d = 2560 without a head and
    // 6 N d^2 + 2 K d^2 + 2 d^2 h = 32256 with h = 8, each for half the grid.
    EXPECT_NE(summary.find("6.24e+05 trajectory-steps, 1.09e+10 FLOP (10.9 GFLOP)"), std::string::npos) << summary;
}

TEST(SweepSpecSummary, Rk4CostsFourGradientEvaluations) {
    const SweepSpec spec = parse("[model]\nsamples_per_class = 20\n[integrator]\nmethod = \"rk4\"\nmax_steps = 4000\n"
                                 "[grid]\nhead_dim = [0, 8]\n");
    const std::string summary = describe_sweep(spec);
    EXPECT_NE(summary.find("8e+03 trajectory-steps, 5.57e+08 FLOP"), std::string::npos) << summary;
    EXPECT_NE(summary.find("rk4: 4 gradient evaluations per step"), std::string::npos) << summary;
}

TEST(SweepSpecSummary, ShowsOverridesAndTeacherStudent) {
    const SweepSpec spec = parse("[model]\nkind = \"teacher_student\"\ninput_dim = 64\n", {"grid.seeds=4"});
    const std::string summary = describe_sweep(spec);
    EXPECT_NE(summary.find("--set       grid.seeds=4"), std::string::npos) << summary;
    EXPECT_NE(summary.find("teacher_student"), std::string::npos) << summary;
    EXPECT_NE(summary.find("input_dim p = 64"), std::string::npos) << summary;
    EXPECT_NE(summary.find("4 seeds"), std::string::npos) << summary;
}

std::vector<std::filesystem::path> example_sweeps() {
    std::vector<std::filesystem::path> paths;
    for (const auto& entry : std::filesystem::directory_iterator(COLLAPSE_SWEEPS_DIR))
        if (entry.path().extension() == ".toml") paths.push_back(entry.path());
    std::sort(paths.begin(), paths.end());
    return paths;
}

TEST(ExampleSweeps, EveryFileInSweepsParses) {
    const auto paths = example_sweeps();
    EXPECT_GE(paths.size(), 3u);
    for (const auto& path : paths) {
        SCOPED_TRACE(path.string());
        EXPECT_NO_THROW({
            const SweepSpec spec = parse_sweep_spec_file(path.string());
            EXPECT_FALSE(describe_sweep(spec).empty());
        });
    }
}

TEST(ExampleSweeps, ShippedGridsHaveTheIntendedShape) {
    const std::filesystem::path directory = COLLAPSE_SWEEPS_DIR;
    const SweepSpec quickstart = parse_sweep_spec_file((directory / "quickstart.toml").string());
    EXPECT_EQ(Grid(quickstart).shape(), (std::vector<std::int64_t>{5, 2, 2, 3, 4}));
    EXPECT_TRUE(quickstart.output.save_initial);

    const SweepSpec phase_diagram = parse_sweep_spec_file((directory / "phase_diagram.toml").string());
    EXPECT_EQ(Grid(phase_diagram).shape(), (std::vector<std::int64_t>{26, 5, 9, 2, 32}));
    EXPECT_EQ(phase_diagram.integrator.precision, Precision::float32);
    EXPECT_TRUE(axis_named(phase_diagram, "lr").log_spaced);

    const SweepSpec teacher_student = parse_sweep_spec_file((directory / "teacher_student.toml").string());
    EXPECT_EQ(teacher_student.shape.kind, ModelKind::teacher_student);
    EXPECT_EQ(teacher_student.shape.input_dim, 64);
    EXPECT_EQ(Grid(teacher_student).shape(), (std::vector<std::int64_t>{3, 2, 2, 1, 8}));
}

} // namespace
} // namespace collapse::test
