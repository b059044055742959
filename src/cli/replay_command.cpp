// `collapse-sweep replay OUT.h5 --at axis=value,...`: re-run one trajectory of
// a stored sweep from the file's spec and (master seed, seed index), with a
// trace every K steps and, optionally, the full state at chosen steps
// (docs/cli.md, "replay").
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>

#include "collapse/backend/backend.hpp"
#include "collapse/backend/batch_assembly.hpp"
#include "collapse/integrators/gradient_descent.hpp"
#include "collapse/integrators/runge_kutta4.hpp"
#include "collapse/model/setup.hpp"
#include "collapse/storage/result_reader.hpp"
#include "collapse/storage/result_writer.hpp"
#include "collapse/storage/state_snapshots.hpp"
#include "collapse/sweep/grid.hpp"
#include "collapse/theory/diagnostics.hpp"
#include "collapse/sweep/spec_parser.hpp"
#include "commands.hpp"

namespace collapse::cli {
namespace {

std::vector<std::string> split(const std::string& text, char separator) {
    std::vector<std::string> parts;
    std::stringstream stream(text);
    for (std::string part; std::getline(stream, part, separator);) parts.push_back(part);
    if (!text.empty() && text.back() == separator) parts.emplace_back();
    return parts;
}

std::string shown_value(const Axis::Type type, double value) {
    if (type == Axis::Type::boolean) return value != 0.0 ? "true" : "false";
    char text[32];
    std::snprintf(text, sizeof text, "%.10g", value);
    return text;
}

std::string listed_values(const Axis& axis) {
    std::string text;
    const std::size_t shown = std::min<std::size_t>(axis.values.size(), 24);
    for (std::size_t v = 0; v < shown; ++v) text += (v ? ", " : "") + shown_value(axis.type, axis.values[v]);
    if (shown < axis.values.size()) text += ", ... (" + std::to_string(axis.values.size()) + " values)";
    return text;
}

// The index of `text` on `axis`: the value it names, whatever its decimal
// form (0.1, 1e-1, 0.10; 0.025 finds linspace's 0.024999999999999998).
std::size_t find_axis_value(const Axis& axis, const std::string& text) {
    double wanted = 0;
    if (axis.type == Axis::Type::boolean && (text == "true" || text == "false")) wanted = text == "true";
    else {
        const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), wanted);
        if (text.empty() || error != std::errc() || end != text.data() + text.size())
            throw UsageError("--at " + axis.name + "=" + text + ": not a number; values: " + listed_values(axis));
    }
    std::size_t best = axis.values.size();
    for (std::size_t v = 0; v < axis.values.size(); ++v) {
        const double value = axis.values[v];
        if (std::abs(value - wanted) <= 1e-9 * std::max(std::abs(value), std::abs(wanted)) || value == wanted) {
            if (best != axis.values.size())
                throw UsageError("--at " + axis.name + "=" + text + " matches more than one value: " + listed_values(axis));
            best = v;
        }
    }
    if (best == axis.values.size())
        throw UsageError("--at " + axis.name + "=" + text + " is not on the grid; values: " + listed_values(axis));
    return best;
}

// The grid index of the trajectory --at names; axes of one value may be left out.
std::vector<std::int64_t> locate(const SweepSpec& spec, const std::string& at) {
    std::map<std::string, std::string> given;
    for (const std::string& item : split(at, ',')) {
        const auto equals = item.find('=');
        if (equals == std::string::npos || equals == 0)
            throw UsageError("--at '" + at + "': expected axis=value pairs separated by commas, e.g. frustration=0.1,seed=3");
        if (!given.emplace(item.substr(0, equals), item.substr(equals + 1)).second)
            throw UsageError("--at '" + at + "': " + item.substr(0, equals) + " given twice");
    }
    std::string names;
    for (const Axis& axis : spec.axes) names += axis.name + ", ";
    names += "seed";
    for (const auto& [name, value] : given) {
        const bool known = name == "seed" || std::any_of(spec.axes.begin(), spec.axes.end(),
                                                         [&](const Axis& axis) { return axis.name == name; });
        if (!known) throw UsageError("--at: " + name + " is not an axis of this file; its axes: " + names);
    }
    std::vector<std::int64_t> index;
    for (const Axis& axis : spec.axes) {
        const auto found = given.find(axis.name);
        if (found == given.end()) {
            if (axis.values.size() != 1)
                throw UsageError("--at: give " + axis.name + "=...; values: " + listed_values(axis));
            index.push_back(0);
            continue;
        }
        index.push_back(static_cast<std::int64_t>(find_axis_value(axis, found->second)));
        given.erase(found);
    }
    const auto seed = given.find("seed");
    std::int64_t seed_index = 0;
    if (seed == given.end()) {
        if (spec.seeds != 1) throw UsageError("--at: give seed=... (0 to " + std::to_string(spec.seeds - 1) + ")");
    } else {
        const std::string& text = seed->second;
        const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seed_index);
        if (text.empty() || error != std::errc() || end != text.data() + text.size() || seed_index < 0 ||
            seed_index >= spec.seeds)
            throw UsageError("--at seed=" + text + ": the file has seeds 0 to " + std::to_string(spec.seeds - 1));
        given.erase(seed);
    }
    index.push_back(seed_index);
    return index;
}

// A TOML literal that parses back to exactly `value`.
std::string exact_literal(const Axis::Type type, double value) {
    if (type == Axis::Type::boolean) return value != 0.0 ? "true" : "false";
    if (type == Axis::Type::integer) return std::to_string(static_cast<std::int64_t>(value));
    char text[40];
    std::snprintf(text, sizeof text, "%.17g", value);
    std::string literal = text;
    if (literal.find_first_of(".eEn") == std::string::npos) literal += ".0";
    return literal;
}

// The full state at min(step, stopping step), on the host: the runner the CPU
// backend runs, stopped at `step` by making it the last one.
template <class Real, class Integrator>
std::int64_t host_state_at(const SweepSpec& spec, const TrajectoryParams& params, std::int64_t step,
                           std::vector<double>& state_out) {
    const SeedDraws draws = draw_seed(spec.shape, spec.max_head_dim(), spec.master_seed, params.seed_index);
    const TrajectorySetup<Real> setup = make_trajectory<Real>(spec.shape, params, draws);
    const StateLayout layout(setup.dims);
    std::vector<Real> state = setup.initial_state, gradient(layout.size), workspace(WorkspaceLayout(setup.dims).size),
                      scratch(Integrator::scratch_vectors * layout.size);
    TrajectorySummary summary;
    TrajectoryRecorder recorder; // no record points: only the state is wanted
    recorder.summary = &summary;
    RunSettings settings = run_settings(spec, params, setup.reference_distance);
    settings.max_steps = step;
    run_trajectory<Real, Integrator>(setup.problem(), {state.data(), gradient.data(), workspace.data(), scratch.data()},
                                     settings, recorder);
    state_out.insert(state_out.end(), state.begin(), state.end());
    return summary.final_step;
}

std::int64_t state_at(const SweepSpec& spec, const TrajectoryParams& params, std::int64_t step,
                      std::vector<double>& state_out) {
    const bool rk4 = spec.integrator.method == IntegratorMethod::rk4;
    if (spec.integrator.precision == Precision::float32)
        return rk4 ? host_state_at<float, RungeKutta4>(spec, params, step, state_out)
                   : host_state_at<float, GradientDescent>(spec, params, step, state_out);
    return rk4 ? host_state_at<double, RungeKutta4>(spec, params, step, state_out)
               : host_state_at<double, GradientDescent>(spec, params, step, state_out);
}

std::vector<std::int64_t> parse_steps(const std::string& text, std::int64_t max_steps) {
    std::vector<std::int64_t> steps;
    for (const std::string& item : split(text, ',')) {
        std::int64_t step = -1;
        const auto [end, error] = std::from_chars(item.data(), item.data() + item.size(), step);
        if (item.empty() || error != std::errc() || end != item.data() + item.size() || step < 0 || step > max_steps)
            throw UsageError("--state-at '" + text + "': expected steps from 0 to max_steps = " +
                             std::to_string(max_steps) + ", separated by commas");
        steps.push_back(step);
    }
    std::sort(steps.begin(), steps.end());
    steps.erase(std::unique(steps.begin(), steps.end()), steps.end());
    return steps;
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](double x, double y) {
               return std::memcmp(&x, &y, sizeof x) == 0;
           });
}

} // namespace

int replay_command(const ReplayOptions& options) {
    if (options.every < 1) throw UsageError("--every must be at least 1");
    if (!std::filesystem::exists(options.path)) throw UsageError(options.path + ": no such file");
    SweepSpec spec;
    std::string file_backend;
    std::int8_t stored_status = -1;
    std::vector<std::int64_t> index;
    {
        const storage::ResultReader reader(options.path);
        spec = parse_sweep_spec_text(reader.spec_text(), reader.attribute("spec_path"), reader.spec_overrides());
        if (reader.shape() != Grid(spec).shape())
            throw std::runtime_error(options.path + ": /results/status does not have the shape of the stored spec");
        file_backend = reader.attribute("backend");
        index = locate(spec, options.at);
        std::int64_t flat = 0;
        const Grid grid(spec);
        for (std::size_t a = 0; a < index.size(); ++a) flat = flat * grid.shape()[a] + index[a];
        stored_status = reader.status()[static_cast<std::size_t>(flat)];
    }
    const Grid grid(spec);
    std::int64_t flat = 0;
    for (std::size_t a = 0; a < index.size(); ++a) flat = flat * grid.shape()[a] + index[a];
    const TrajectoryParams params = grid.params(flat);
    const std::vector<std::int64_t> state_steps =
        options.state_at.empty() ? std::vector<std::int64_t>{} : parse_steps(options.state_at, spec.integrator.max_steps);

    std::string output = options.output_path;
    if (output.empty()) output = std::filesystem::path(options.path).stem().string() + ".replay.h5";
    if (std::filesystem::exists(output) && !options.overwrite)
        throw UsageError("output " + output + " exists; pass --overwrite to replace it");
    if (std::filesystem::exists(output) && std::filesystem::equivalent(output, options.path))
        throw UsageError("-o " + output + " is the sweep file itself");

    // The backend that made the file, unless told otherwise: only it repeats
    // the sweep's trajectory bit for bit.
    const std::string choice = options.backend.empty() ? (file_backend == "cuda" ? "cuda" : "cpu") : options.backend;
    std::string note;
    std::unique_ptr<Backend> backend;
    try {
        backend = make_backend(options.backend.empty() && choice == "cuda" ? "auto" : choice, options.threads, note);
    } catch (const BackendError& error) {
        throw UsageError(std::string("--backend ") + choice + ": " + error.what());
    }
    if (!options.quiet && backend->name() != file_backend)
        std::cerr << "note: the file was made on " << file_backend << ", this replay runs on " << backend->name()
                  << (note.empty() ? "" : " (" + note + ")") << "; results may differ in the last bits\n";

    // Pass 1: the trajectory exactly as the sweep ran it (summary, final state).
    const std::vector<std::int64_t> flat_one{flat};
    BatchOutput exact;
    backend->run_batch(spec, grid, flat_one, exact);
    theory::analyse_batch(spec, grid, exact); // what the scheduler adds to every sweep batch

    // Pass 2: the same trajectory in a one-point grid recording every K steps.
    // Axes of several values are pinned to this point's exact value by --set,
    // so the replay file's spec (text + overrides) describes it; the seed
    // axis runs 0..s so that seed index s keeps its draws (earlier seeds: not run).
    std::vector<std::string> overrides = spec.overrides;
    for (std::size_t a = 0; a < spec.axes.size(); ++a)
        if (spec.axes[a].values.size() > 1)
            overrides.push_back("grid." + spec.axes[a].name + "=[" +
                                exact_literal(spec.axes[a].type, spec.axes[a].values[static_cast<std::size_t>(index[a])]) + "]");
    overrides.push_back("grid.seeds=" + std::to_string(params.seed_index + 1));
    overrides.push_back("output.record_every=" + std::to_string(options.every));
    const SweepSpec replay_spec = parse_sweep_spec_text(spec.source_text, spec.source_path, overrides);
    const Grid replay_grid(replay_spec);
    const std::int64_t replay_flat = params.seed_index;
    const TrajectoryParams replay_params = replay_grid.params(replay_flat);
    if (std::memcmp(&replay_params.frustration, &params.frustration, sizeof(double)) != 0 ||
        replay_params.head_dim != params.head_dim || std::memcmp(&replay_params.lr, &params.lr, sizeof(double)) != 0 ||
        replay_params.stop_gradient != params.stop_gradient ||
        std::memcmp(&replay_params.init_scale, &params.init_scale, sizeof(double)) != 0 ||
        replay_params.seed_index != params.seed_index)
        throw std::runtime_error("internal error: the one-point grid does not reproduce the trajectory's parameters");
    BatchOutput dense;
    const std::vector<std::int64_t> replay_one{replay_flat};
    backend->run_batch(replay_spec, replay_grid, replay_one, dense);
    theory::analyse_batch(replay_spec, replay_grid, dense); // the exact theory trace at the dense record points
    const TrajectorySummary& a = exact.summary[0];
    const TrajectorySummary& b = dense.summary[0];
    if (a.status != b.status || a.final_step != b.final_step || !same_bits(exact.final_label_embeddings, dense.final_label_embeddings) ||
        !same_bits(exact.final_head, dense.final_head))
        throw std::runtime_error("the " + backend->name() + " backend did not repeat the trajectory bit for bit "
                                 "between two runs");
    // The summary the sweep stores: its slow_rate is fitted over the sweep's
    // record points, not the dense ones.
    dense.summary = exact.summary;
    dense.theory = exact.theory;

    storage::Provenance provenance{options.command_line, backend->name(), backend->device_name()};
    auto writer = storage::ResultWriter::create(output, replay_spec, replay_grid, provenance, storage::ShardRange{},
                                                options.overwrite);
    if (replay_spec.output.save_initial) writer->write_seed_data(make_seed_data(replay_spec, params.seed_index));
    writer->write_batch(dense);
    writer->close();

    if (!state_steps.empty()) {
        storage::StateSnapshots snapshots;
        snapshots.classes = spec.shape.classes;
        snapshots.samples = spec.shape.samples();
        snapshots.dim = spec.shape.dim;
        snapshots.head_dim = params.head_dim;
        snapshots.input_dim = spec.shape.kind == ModelKind::teacher_student ? spec.shape.input_dim : 0;
        snapshots.requested_step = state_steps;
        for (const std::int64_t step : state_steps) snapshots.step.push_back(state_at(spec, params, step, snapshots.states));
        storage::write_state_snapshots(output, snapshots);
    }

    if (!options.quiet) {
        static const char* const names[] = {"stable", "collapsed", "diverged"};
        const int status = static_cast<int>(a.status);
        std::cout << output << ": trajectory " << flat << " of " << options.path << " (seed " << params.seed_index
                  << "), " << (status >= 0 && status < 3 ? names[status] : "?") << " at step " << a.final_step << ", "
                  << dense.trace_length << " record points every " << options.every << " steps";
        if (!state_steps.empty()) std::cout << ", " << state_steps.size() << " states";
        std::cout << '\n';
        if (stored_status < 0) std::cout << "note: the sweep file has not run this trajectory yet\n";
        else if (static_cast<int>(stored_status) != status)
            std::cout << "warning: the sweep file stores status " << static_cast<int>(stored_status) << ", the replay gives "
                      << status << '\n';
    }
    return exit_ok;
}

} // namespace collapse::cli
