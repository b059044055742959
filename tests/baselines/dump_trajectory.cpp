// Runs one trajectory with the engine's own setup and runner (gd) and writes,
// as JSON, everything a baseline needs to redo it: the pairs, the initial
// state, and the state and observables after --steps steps.
// check_against_engine.py feeds that to the NumPy and PyTorch baselines.
//
//   dump_trajectory --classes K --per-class n --dim d --head h --frustration f
//                   --stop-gradient 0|1 --lr LR --steps S --precision float32|float64 [--seed I]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "collapse/integrators/gradient_descent.hpp"
#include "collapse/model/setup.hpp"
#include "collapse/trajectory/runner.hpp"

namespace {

using namespace collapse;

struct Options {
    ModelShape shape;
    TrajectoryParams params;
    std::int64_t steps = 50;
    bool single = false;
};

Options parse(int argc, char** argv) {
    Options options;
    for (int a = 1; a + 1 < argc; a += 2) {
        const std::string flag = argv[a], value = argv[a + 1];
        if (flag == "--classes") options.shape.classes = std::stoi(value);
        else if (flag == "--per-class") options.shape.samples_per_class = std::stoi(value);
        else if (flag == "--dim") options.shape.dim = std::stoi(value);
        else if (flag == "--head") options.params.head_dim = std::stoi(value);
        else if (flag == "--frustration") options.params.frustration = std::stod(value);
        else if (flag == "--stop-gradient") options.params.stop_gradient = value == "1";
        else if (flag == "--lr") options.params.lr = std::stod(value);
        else if (flag == "--steps") options.steps = std::stoll(value);
        else if (flag == "--precision") options.single = value == "float32";
        else if (flag == "--seed") options.params.seed_index = std::stoll(value);
        else throw std::invalid_argument("unknown flag " + flag);
    }
    return options;
}

template <class Real>
void print_array(const char* name, const Real* values, std::size_t count, bool last = false) {
    std::printf("  \"%s\": [", name);
    for (std::size_t e = 0; e < count; ++e)
        std::printf("%s%.17g", e ? ", " : "", static_cast<double>(values[e])); // exact for float and double
    std::printf("]%s\n", last ? "" : ",");
}

template <class Real>
void print_state(const char* prefix, const TrajectoryDims& dims, const Real* state) {
    const StateLayout layout(dims);
    const std::string name = prefix;
    print_array((name + "_X").c_str(), state, layout.labels);
    print_array((name + "_Y").c_str(), state + layout.labels, layout.head_A - layout.labels);
    print_array((name + "_A").c_str(), state + layout.head_A, layout.head_B - layout.head_A);
    print_array((name + "_B").c_str(), state + layout.head_B, layout.size - layout.head_B);
}

template <class Real>
int run(const Options& options) {
    const SeedDraws draws = draw_seed(options.shape, options.params.head_dim, 2024, options.params.seed_index);
    const TrajectorySetup<Real> setup = make_trajectory<Real>(options.shape, options.params, draws);
    const StateLayout layout(setup.dims);
    std::vector<Real> state = setup.initial_state, gradient(layout.size), workspace(WorkspaceLayout(setup.dims).size);
    const std::vector<std::int64_t> record{0, options.steps};
    std::vector<double> label_distance(2, NAN), projected_distance(2, NAN), accuracy(2, NAN), loss(2, NAN);
    TrajectorySummary summary;
    const TrajectoryRecorder recorder{record.data(), 2, label_distance.data(), projected_distance.data(),
                                      accuracy.data(), loss.data(), &summary};
    RunSettings settings;
    settings.lr = options.params.lr;
    settings.max_steps = options.steps;
    settings.collapse_threshold = 0; // fixed length
    settings.stop_on_collapse = false;
    settings.reference_distance = setup.reference_distance;
    run_trajectory<Real, GradientDescent>(setup.problem(), TrajectoryBuffers<Real>{state.data(), gradient.data(),
                                                                                   workspace.data(), nullptr},
                                          settings, recorder);
    if (summary.final_step != options.steps) throw std::runtime_error("the trajectory diverged; pick a smaller lr");

    std::printf("{\n  \"classes\": %d, \"samples\": %d, \"dim\": %d, \"head_dim\": %d,\n", setup.dims.classes,
                setup.dims.samples, setup.dims.dim, setup.dims.head_dim);
    std::printf("  \"stop_gradient\": %s, \"lr\": %.17g, \"steps\": %lld, \"precision\": \"%s\",\n",
                setup.stop_gradient ? "true" : "false", options.params.lr, static_cast<long long>(options.steps),
                options.single ? "float32" : "float64");
    print_array("primary_label", setup.primary_label.data(), setup.primary_label.size());
    print_array("second_label", setup.second_label.data(), setup.second_label.size());
    print_state("initial", setup.dims, setup.initial_state.data());
    print_state("final", setup.dims, state.data());
    print_array("loss", loss.data(), 2);
    print_array("accuracy", accuracy.data(), 2);
    print_array("label_distance", label_distance.data(), 2);
    print_array("projected_distance", projected_distance.data(), 2); // both divided by D_ref
    std::printf("  \"reference_distance\": %.17g\n", setup.reference_distance);
    std::printf("}\n");
    return 0;
}

} // namespace

int main(int argc, char** argv) try {
    const Options options = parse(argc, argv);
    return options.single ? run<float>(options) : run<double>(options);
} catch (const std::exception& error) {
    std::fprintf(stderr, "dump_trajectory: %s\n", error.what());
    return 1;
}
