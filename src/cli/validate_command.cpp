// `collapse-sweep validate SPEC.toml`: parse and describe the sweep, then
// time a few steps of each distinct trajectory kind on the chosen backend
// and estimate the run's wall time (docs/cli.md, "validate").
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <set>
#include <thread>

#include "collapse/backend/backend.hpp"
#include "collapse/scheduler/twin_sharing.hpp"
#include "collapse/sweep/grid.hpp"
#include "collapse/sweep/spec_parser.hpp"
#include "commands.hpp"
#include "run_limits.hpp"

namespace collapse::cli {
namespace {

using Clock = std::chrono::steady_clock;

const Axis* find_axis(const SweepSpec& spec, const std::string& name) {
    for (const Axis& axis : spec.axes)
        if (axis.name == name) return &axis;
    return nullptr;
}

// The values a parameter takes over the grid: the axis's, or the fixed one.
std::vector<double> values_of(const SweepSpec& spec, const std::string& name, double fixed) {
    const Axis* axis = find_axis(spec, name);
    return axis ? axis->values : std::vector<double>{fixed};
}

// One kind of trajectory as far as cost goes: head width and stop-gradient.
struct TrajectoryKind {
    int head_dim = 0;
    bool stop_gradient = false;
    double cells = 0;      // grid cells of this kind
    double computed = 0;   // of which computed (h = 0 twins are computed once)
    double seconds_per_step = 0; // per step of a full batch of `width` trajectories
    double seconds_fixed = 0;    // per batch, independent of the step count
};

std::string seconds_text(double seconds) {
    char text[64];
    if (seconds < 120) std::snprintf(text, sizeof text, "%.3g s", seconds);
    else if (seconds < 7200) std::snprintf(text, sizeof text, "%.3g min", seconds / 60);
    else if (seconds < 172800) std::snprintf(text, sizeof text, "%.3g h", seconds / 3600);
    else std::snprintf(text, sizeof text, "%.3g days", seconds / 86400);
    return text;
}

double process_cpu_seconds() {
    timespec now{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
    return static_cast<double>(now.tv_sec) + 1e-9 * static_cast<double>(now.tv_nsec);
}

struct ProbeTime {
    double work = 0; // seconds the probe needs on its own cores (CPU time / threads), or wall time on a GPU
    double wall = 0;
};

// Times `width` trajectories of `kind` for `steps` steps.
ProbeTime time_probe(const SweepSpec& spec, Backend& backend, const TrajectoryKind& kind, std::int64_t width,
                     std::int64_t steps) {
    SweepSpec probe = spec;
    probe.integrator.max_steps = steps;
    probe.collapse.stop_on_collapse = false; // a collapse must not end the probe early
    probe.output.record_points = 2;
    probe.output.record_every = 0;
    probe.output.save_samples = false;
    probe.output.save_initial = false;
    const std::vector<double> fs = values_of(spec, "frustration", spec.defaults.frustration);
    const std::vector<double> lrs = values_of(spec, "lr", spec.defaults.lr);
    const std::vector<double> scales = values_of(spec, "init_scale", spec.defaults.init_scale);
    std::vector<TrajectoryParams> points;
    for (std::int64_t t = 0; t < width; ++t)
        // The most pairs (largest f), and the smallest lr, which diverges last.
        points.push_back(TrajectoryParams{*std::max_element(fs.begin(), fs.end()), kind.head_dim,
                                          *std::min_element(lrs.begin(), lrs.end()), kind.stop_gradient, scales.front(),
                                          t % spec.seeds});
    const Grid grid = Grid::from_points(probe, points);
    std::vector<std::int64_t> indices(points.size());
    for (std::size_t i = 0; i < indices.size(); ++i) indices[i] = static_cast<std::int64_t>(i);
    BatchOutput out;
    // On the CPU, the process's CPU time over the threads: what the probe
    // would take on cores of its own, so a busy machine does not inflate it.
    const double cpu_start = process_cpu_seconds();
    const auto start = Clock::now();
    backend.run_batch(probe, grid, indices, out);
    ProbeTime time;
    time.wall = std::chrono::duration<double>(Clock::now() - start).count();
    time.work = backend.name() == "cpu" ? (process_cpu_seconds() - cpu_start) / static_cast<double>(width) : time.wall;
    return time;
}

// One step, then 16, 64, ... steps until a probe takes about a quarter of
// this kind's share of the budget; then both probes twice more, keeping the
// fastest of each (interference only ever adds time). The difference gives
// the cost per step, free of the fixed cost per batch (setup, theory
// diagnostics), which is kept too.
void measure(const SweepSpec& spec, Backend& backend, TrajectoryKind& kind, std::int64_t width, double budget) {
    const auto start = Clock::now();
    const auto spent = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
    ProbeTime one = time_probe(spec, backend, kind, width, 1);
    std::int64_t steps = std::min<std::int64_t>(16, spec.integrator.max_steps);
    ProbeTime many = one;
    while (steps > 1) {
        many = time_probe(spec, backend, kind, width, steps);
        if (many.wall >= budget / 4 || steps >= spec.integrator.max_steps || spent() + 4 * many.wall > budget / 2) break;
        steps = std::min<std::int64_t>(steps * 4, spec.integrator.max_steps);
    }
    for (int repeat = 0; repeat < 2 && steps > 1 && spent() + one.wall + many.wall < budget; ++repeat) {
        one.work = std::min(one.work, time_probe(spec, backend, kind, width, 1).work);
        many.work = std::min(many.work, time_probe(spec, backend, kind, width, steps).work);
    }
    double per_step = steps > 1 ? (many.work - one.work) / static_cast<double>(steps - 1) : 0;
    if (!(per_step > 0)) per_step = many.work / static_cast<double>(steps);
    kind.seconds_per_step = per_step;
    kind.seconds_fixed = std::max(0.0, one.work - per_step);
}

} // namespace

int validate_command(const ValidateOptions& options) {
    const SweepSpec spec = parse_sweep_spec_file(options.spec_path, options.overrides);
    std::cout << describe_sweep(spec);
    std::cout << describe_and_check_memory(spec);
    if (options.no_timing) return exit_ok;

    std::string note;
    std::unique_ptr<Backend> backend;
    try {
        backend = make_backend(options.backend, options.threads, note);
    } catch (const BackendError& error) {
        throw UsageError(std::string("--backend ") + options.backend + ": " + error.what());
    }
    if (!note.empty()) std::cerr << "note: " << note << '\n';

    const Grid grid(spec);
    const auto total = static_cast<double>(grid.size());
    const std::vector<double> heads = values_of(spec, "head_dim", spec.defaults.head_dim);
    const std::vector<double> gradients = values_of(spec, "stop_gradient", spec.defaults.stop_gradient ? 1.0 : 0.0);
    const bool share = twin_sharing_enabled() && TwinIndex(spec).enabled();
    std::vector<TrajectoryKind> kinds;
    for (double head : heads)
        for (double sg : gradients) {
            // At h = 0 with sharing, the stop-gradient twin costs nothing more.
            if (share && head == 0.0 && sg != gradients.front()) continue;
            TrajectoryKind kind;
            kind.head_dim = static_cast<int>(head);
            kind.stop_gradient = sg != 0.0;
            kind.cells = total / static_cast<double>(heads.size() * gradients.size());
            kind.computed = kind.cells;
            if (share && kind.head_dim == 0) kind.cells *= 2;
            kinds.push_back(kind);
        }

    // On the CPU: one trajectory on a one-thread backend, timed by its CPU
    // time (the run spreads trajectories over threads that never wait for
    // each other, and on a shared machine wall time and OpenMP's spinning
    // say more about the neighbours than about the sweep). On a GPU: a full
    // batch, by wall time.
    const bool cpu = backend->name() == "cpu";
    const int run_threads = options.threads > 0 ? options.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    std::unique_ptr<Backend> single_thread = cpu ? make_cpu_backend(1) : nullptr;
    Backend& timed = cpu ? *single_thread : *backend;
    const std::int64_t width =
        cpu ? 1 : std::max<std::int64_t>(1, std::min<std::int64_t>(backend->default_batch_size(spec), grid.size()));
    const double parallel = cpu ? run_threads : static_cast<double>(width);
    constexpr double budget_seconds = 0.75; // of the one second allowed, some goes to warming up
    const auto start = Clock::now();
    TrajectoryKind warm_up = kinds.front();
    time_probe(spec, timed, warm_up, width, 1); // first-touch allocation, thread start
    for (TrajectoryKind& kind : kinds) measure(spec, timed, kind, width, budget_seconds / static_cast<double>(kinds.size()));
    const double probing = std::chrono::duration<double>(Clock::now() - start).count();

    // Every trajectory to max_steps: an upper bound when runs stop early.
    const double evaluations = spec.integrator.method == IntegratorMethod::rk4 ? 4.0 : 1.0;
    const auto max_steps = static_cast<double>(spec.integrator.max_steps);
    double seconds = 0, longest = 0, computed = 0, cells = 0;
    const double graphs = static_cast<double>(spec.seeds) *
                          static_cast<double>(values_of(spec, "frustration", spec.defaults.frustration).size());
    for (const TrajectoryKind& kind : kinds) {
        const double batch_seconds = max_steps * kind.seconds_per_step + kind.seconds_fixed;
        // The fixed cost is mostly the theory of the pair graph, computed once
        // per (seed, f) in a batch, not once per trajectory.
        const double fixed_count = std::min(kind.computed, graphs);
        seconds += (kind.computed * max_steps * kind.seconds_per_step + fixed_count * kind.seconds_fixed) / parallel;
        longest = std::max(longest, batch_seconds);
        computed += kind.computed;
        cells += kind.cells;
    }
    seconds = std::max(seconds, longest);
    std::cout << "time          about " << seconds_text(seconds) << " on " << backend->name() << " ["
              << backend->device_name() << "] if every trajectory runs to max_steps";
    if (computed < cells) std::cout << " (" << static_cast<std::int64_t>(computed) << " computed: h = 0 twins once)";
    std::cout << "; measured in " << seconds_text(probing) << ", "
              << (cpu ? "one thread, times " + std::to_string(run_threads) + " threads"
                      : std::to_string(width) + " trajectories at a time")
              << ":\n";
    for (const TrajectoryKind& kind : kinds) {
        const double step_seconds = kind.seconds_per_step / static_cast<double>(width); // on one thread or the device
        const double flop_rate = gradient_flop(spec.shape, kind.head_dim) * evaluations / step_seconds;
        char line[200];
        std::snprintf(line, sizeof line, "  head_dim %-3d stop_gradient %-5s %9.3g s per trajectory-step, %6.3g GFLOP/s\n",
                      kind.head_dim, kind.stop_gradient ? "true" : "false", step_seconds, flop_rate / 1e9);
        std::cout << line;
    }
    return exit_ok;
}

} // namespace collapse::cli
