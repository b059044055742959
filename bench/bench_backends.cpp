// Times the CPU and (when usable) CUDA backends on fixed-length runs of the
// plain model and of the head + stop-gradient model, gd, and reports
// trajectory-steps/s and GFLOP/s with the FLOP count of docs/performance.md.
// No early stop (threshold 0, stop_on_collapse false), so every trajectory
// does the same work.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "collapse/backend/backend.hpp"
#include "collapse/model/layout.hpp"
#include "collapse/sweep/grid.hpp"

namespace {

using namespace collapse;

struct BenchShape {
    std::string name;
    int classes, samples_per_class, dim, head_dim; // the head configs run with stop-gradient
};

const std::vector<BenchShape> all_shapes = {
    {"small", 4, 50, 8, 0}, {"head", 4, 50, 8, 8}, {"medium", 10, 100, 32, 32}, {"large", 10, 1000, 64, 64}};

struct Options {
    std::int64_t trajectories = 1024;
    std::int64_t steps = 2000;
    std::vector<std::string> shapes{"small", "head", "medium", "large"};
    bool full = false; // CPU too runs all trajectories and all steps (bench/run.sh)
    std::vector<std::string> backends{"cpu", "cuda"};
    int threads = 0;
    double peak_gflops = 0;
    double max_seconds = 20; // per timed run; steps shrink to fit, never grow past --steps
    int repeats = 3;
    Precision precision = Precision::float32;
    double frustration = 0.1, lr = 0.05;
};

constexpr const char* usage =
    "bench_backends [--trajectories N=1024] [--steps S=2000] [--configs small,head,medium,large]\n"
    "               [--backends cpu,cuda,cuda-thread,cuda-team,cuda-warp,cuda-block,cuda-block-tc,cuda-lockstep,cuda-lockstep-nograph] [--threads T] [--peak-gflops G] [--max-seconds X=20]\n"
    "               [--repeats R=3] [--precision float32|float64] [--frustration F=0.1] [--lr LR=0.05]\n"
    "               [--full 0|1]\n"
    "A config is small, head, medium, large, or any shape K<K>n<n>d<d>h<h>, e.g. K10n100d32h32.\n"
    "CPU runs use min(N, 4 * threads) trajectories; each timed run is cut to about --max-seconds\n"
    "by lowering the step count (measured first on a 10-step run), so rates stay comparable.\n"
    "--full 1: every backend runs all N trajectories and all S steps (bench/run.sh).\n";

std::vector<std::string> split(const std::string& list) {
    std::vector<std::string> parts;
    std::stringstream stream(list);
    for (std::string part; std::getline(stream, part, ',');)
        if (!part.empty()) parts.push_back(part);
    return parts;
}

Options parse(int argc, char** argv) {
    Options options;
    for (int a = 1; a < argc; ++a) {
        const std::string flag = argv[a];
        if (flag == "--help" || flag == "-h") {
            std::fputs(usage, stdout);
            std::exit(0);
        }
        if (a + 1 >= argc) throw std::invalid_argument(flag + " needs a value\n" + usage);
        const std::string value = argv[++a];
        if (flag == "--trajectories") options.trajectories = std::stoll(value);
        else if (flag == "--steps") options.steps = std::stoll(value);
        else if (flag == "--configs") options.shapes = split(value);
        else if (flag == "--backends") options.backends = split(value);
        else if (flag == "--threads") options.threads = std::stoi(value);
        else if (flag == "--peak-gflops") options.peak_gflops = std::stod(value);
        else if (flag == "--max-seconds") options.max_seconds = std::stod(value);
        else if (flag == "--repeats") options.repeats = std::max(1, std::stoi(value));
        else if (flag == "--precision") options.precision = value == "float64" ? Precision::float64 : Precision::float32;
        else if (flag == "--frustration") options.frustration = std::stod(value);
        else if (flag == "--lr") options.lr = std::stod(value);
        else if (flag == "--full") options.full = value == "1";
        else throw std::invalid_argument("unknown flag " + flag + "\n" + usage);
    }
    if (options.trajectories < 1 || options.steps < 1) throw std::invalid_argument("--trajectories and --steps must be >= 1");
    return options;
}

SweepSpec bench_spec(const BenchShape& shape, const Options& options, std::int64_t trajectories, std::int64_t steps) {
    SweepSpec spec;
    spec.shape.classes = shape.classes;
    spec.shape.samples_per_class = shape.samples_per_class;
    spec.shape.dim = shape.dim;
    spec.defaults.head_dim = shape.head_dim;
    spec.defaults.stop_gradient = shape.head_dim > 0;
    spec.defaults.frustration = options.frustration;
    spec.defaults.lr = options.lr;
    spec.integrator.method = IntegratorMethod::gd;
    spec.integrator.max_steps = steps;
    spec.integrator.precision = options.precision;
    spec.collapse.threshold = 0.0; // never collapses: fixed-length runs
    spec.collapse.stop_on_collapse = false;
    spec.seeds = trajectories; // the only axis
    spec.master_seed = 12345;
    return spec;
}

// FLOP of one evaluate() + gd update + observables, embedding kind;
// docs/performance.md "FLOP count per step" derives every term.
struct StepFlops {
    double sample_products = 0; // 6 N d^2: W x_i, W^T R1_i, R1_i x_i^T (0 without a head)
    double total = 0;
};

StepFlops flops_per_step(const BenchShape& shape, double frustration) {
    const double N = static_cast<double>(shape.classes) * shape.samples_per_class, K = shape.classes,
                 d = shape.dim, h = shape.head_dim;
    const double F = static_cast<double>(static_cast<long long>(frustration * N + 0.5)); // frustrated samples
    const double state = N * d + K * d + 2 * h * d;
    StepFlops flops;
    if (shape.head_dim == 0) {
        // Plain model: per pair a residual, its square and a class sum (5d, the
        // gradient's scale included); the nearest label (3Kd per sample); the
        // label gradient (3Kd); one minimum pairwise distance; the update.
        flops.total = 5 * (N + F) * d + 3 * K * N * d + 3 * K * d + 1.5 * d * K * (K - 1) + 2 * state;
        return flops;
    }
    flops.sample_products = 6 * N * d * d;
    const double label_products = 6 * K * d * d;       // W y_k, W^T R2_k, R2_k y_k^T
    const double head_products = 6 * h * d * d + d * d; // W = B A, B^T G, G A^T, G /= M
    const double pair_terms = 10 * N * d + 12 * F * d;  // residual and class sums, two squared distances per pair
    const double sample_terms = (2 + 3 * K) * N * d;    // gradient init and scale, nearest label (accuracy)
    const double label_terms = 6 * K * d;
    const double distances = 3 * d * K * (K - 1);       // min pairwise distance of y_k and of W y_k
    const double update = 2 * state;                    // z -= lr g
    flops.total = flops.sample_products + label_products + head_products + pair_terms + sample_terms + label_terms +
                  distances + update;
    return flops;
}

struct Timing {
    double seconds = 0;
    double trajectory_steps = 0; // steps integrated, summed over trajectories
    double evaluations = 0;      // gradient evaluations: steps + 1 per trajectory
};

Timing time_run(Backend& backend, const SweepSpec& spec) {
    const Grid grid(spec);
    std::vector<std::int64_t> indices(static_cast<std::size_t>(grid.size()));
    std::iota(indices.begin(), indices.end(), 0);
    BatchOutput out;
    const auto start = std::chrono::steady_clock::now();
    backend.run_batch(spec, grid, indices, out); // synchronous: includes setup, transfers and the kernel
    const auto stop = std::chrono::steady_clock::now();
    Timing timing;
    timing.seconds = std::chrono::duration<double>(stop - start).count();
    for (const TrajectorySummary& summary : out.summary) {
        timing.trajectory_steps += static_cast<double>(summary.final_step);
        timing.evaluations += static_cast<double>(summary.final_step + 1);
    }
    return timing;
}

struct Row {
    std::string shape, backend, device;
    std::int64_t trajectories = 0, steps = 0;
    double seconds = 0, steps_per_second = 0, gflops = 0, gflops_sample_products = 0, peak_fraction = 0;
};

Row measure(Backend& backend, const BenchShape& shape, const Options& options) {
    // The CPU gets a few trajectories per thread; more would only lengthen the run.
    const int threads = options.threads > 0 ? options.threads : static_cast<int>(std::thread::hardware_concurrency());
    const std::int64_t trajectories = backend.name() == "cpu" && !options.full
                                          ? std::min<std::int64_t>(options.trajectories, 4 * std::max(1, threads))
                                          : options.trajectories;
    // Calibration, also the warm-up (CUDA context, first allocations).
    const std::int64_t calibration_steps = std::min<std::int64_t>(options.steps, 10);
    const Timing calibration = time_run(backend, bench_spec(shape, options, trajectories, calibration_steps));
    const double seconds_per_step = calibration.seconds / static_cast<double>(calibration_steps);
    const auto fitting = static_cast<std::int64_t>(options.max_seconds / std::max(seconds_per_step, 1e-9));
    const std::int64_t steps = options.full ? options.steps : std::clamp<std::int64_t>(fitting, calibration_steps, options.steps);

    std::vector<Timing> runs;
    for (int r = 0; r < options.repeats; ++r) runs.push_back(time_run(backend, bench_spec(shape, options, trajectories, steps)));
    std::sort(runs.begin(), runs.end(), [](const Timing& a, const Timing& b) { return a.seconds < b.seconds; });
    const Timing& median = runs[runs.size() / 2];

    const StepFlops flops = flops_per_step(shape, options.frustration);
    Row row;
    row.shape = shape.name;
    row.backend = backend.name();
    row.device = backend.device_name();
    row.trajectories = trajectories;
    row.steps = steps;
    row.seconds = median.seconds;
    row.steps_per_second = median.trajectory_steps / median.seconds;
    row.gflops = median.evaluations * flops.total / median.seconds * 1e-9;
    row.gflops_sample_products = median.evaluations * flops.sample_products / median.seconds * 1e-9;
    row.peak_fraction = options.peak_gflops > 0 ? row.gflops / options.peak_gflops : 0;
    return row;
}

std::string peak_text(double fraction, double peak_gflops) {
    if (peak_gflops <= 0) return "-";
    char text[32];
    std::snprintf(text, sizeof text, "%.2f", 100 * fraction);
    return text;
}

// A named config, or any shape spelled K<K>n<n>d<d>h<h> (e.g. K10n100d32h32), for scaling runs.
BenchShape find_shape(const std::string& name) {
    const auto known = std::find_if(all_shapes.begin(), all_shapes.end(), [&](const BenchShape& s) { return s.name == name; });
    if (known != all_shapes.end()) return *known;
    BenchShape shape{name, 0, 0, 0, -1};
    if (std::sscanf(name.c_str(), "K%dn%dd%dh%d", &shape.classes, &shape.samples_per_class, &shape.dim, &shape.head_dim) != 4 ||
        shape.classes < 2 || shape.samples_per_class < 1 || shape.dim < 1 || shape.head_dim < 0)
        throw std::invalid_argument("unknown config " + name + " (small, head, medium, large or K<K>n<n>d<d>h<h>)");
    return shape;
}

std::unique_ptr<Backend> open_backend(const std::string& name, int threads) {
    if (name == "cpu") return make_cpu_backend(threads);
    if (name == "cuda") return make_cuda_backend();
    // cuda-thread / cuda-team / cuda-warp / cuda-block: one kernel forced (COLLAPSE_CUDA_KERNEL is read when the backend
    // is made), the lockstep path off; cuda-block-tc: the fused block kernel on tensor cores
    // (COLLAPSE_CUDA_TENSOR_CORES=on); cuda-lockstep: the lockstep cuBLAS path wherever it runs (gd, embedding kind);
    // cuda-lockstep-nograph: the same without the CUDA Graph per step (COLLAPSE_CUDA_LOCKSTEP_GRAPH=off).
    const bool lockstep = name == "cuda-lockstep" || name == "cuda-lockstep-nograph";
    const bool tensor = name == "cuda-block-tc";
    if (name == "cuda-thread" || name == "cuda-team" || name == "cuda-warp" || name == "cuda-block" || tensor ||
        lockstep) {
        if (!lockstep) ::setenv("COLLAPSE_CUDA_KERNEL", tensor ? "block" : name.c_str() + 5, 1); // after "cuda-"
        ::setenv("COLLAPSE_CUDA_TENSOR_CORES", tensor ? "on" : "off", 1);
        ::setenv("COLLAPSE_CUDA_LOCKSTEP", lockstep ? "on" : "off", 1);
        ::setenv("COLLAPSE_CUDA_LOCKSTEP_GRAPH", name == "cuda-lockstep-nograph" ? "off" : "on", 1);
        struct Restore {
            ~Restore() {
                ::unsetenv("COLLAPSE_CUDA_KERNEL");
                ::unsetenv("COLLAPSE_CUDA_TENSOR_CORES");
                ::unsetenv("COLLAPSE_CUDA_LOCKSTEP");
                ::unsetenv("COLLAPSE_CUDA_LOCKSTEP_GRAPH");
            }
        } restore;
        return make_cuda_backend();
    }
    throw std::invalid_argument("unknown backend " + name);
}

} // namespace

int main(int argc, char** argv) try {
    const Options options = parse(argc, argv);
    std::vector<Row> rows;
    for (const std::string& backend_name : options.backends) {
        std::unique_ptr<Backend> backend;
        try {
            backend = open_backend(backend_name, options.threads);
        } catch (const BackendError& error) {
            std::printf("skipping backend %s: %s\n", backend_name.c_str(), error.what());
            continue;
        }
        for (const std::string& shape_name : options.shapes) {
            const BenchShape shape = find_shape(shape_name);
            Row row = measure(*backend, shape, options);
            row.backend = backend_name; // cuda-thread, -team, -warp, -block(-tc) and -lockstep are all "cuda" to the backend
            rows.push_back(row);
            // One machine-readable line per measurement, printed as soon as it exists.
            std::printf("RESULT {\"config\":\"%s\",\"backend\":\"%s\",\"device\":\"%s\",\"precision\":\"%s\","
                        "\"trajectories\":%lld,\"steps\":%lld,\"seconds\":%.6g,\"trajectory_steps_per_s\":%.6g,"
                        "\"gflops\":%.6g,\"gflops_6nd2\":%.6g,\"peak_gflops\":%.6g,\"peak_fraction\":%.6g}\n",
                        row.shape.c_str(), row.backend.c_str(), row.device.c_str(),
                        options.precision == Precision::float32 ? "float32" : "float64",
                        static_cast<long long>(row.trajectories), static_cast<long long>(row.steps), row.seconds,
                        row.steps_per_second, row.gflops, row.gflops_sample_products, options.peak_gflops,
                        row.peak_fraction);
            std::fflush(stdout);
        }
    }
    std::printf("\n%-7s %-5s %7s %6s %9s %14s %9s %11s %7s  %s\n", "config", "back", "traj", "steps", "seconds",
                "traj-steps/s", "GFLOP/s", "6Nd2 GF/s", "%peak", "device");
    for (const Row& row : rows)
        std::printf("%-7s %-5s %7lld %6lld %9.3f %14.4g %9.2f %11.2f %7s  %s\n", row.shape.c_str(), row.backend.c_str(),
                    static_cast<long long>(row.trajectories), static_cast<long long>(row.steps), row.seconds,
                    row.steps_per_second, row.gflops, row.gflops_sample_products,
                    peak_text(row.peak_fraction, options.peak_gflops).c_str(),
                    row.device.c_str());
    return 0;
} catch (const std::exception& error) {
    std::fprintf(stderr, "bench_backends: %s\n", error.what());
    return 1;
}
