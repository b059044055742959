// The human summary printed by `collapse-sweep validate`.
#include <cmath>
#include <cstdio>
#include <sstream>

#include "collapse/sweep/spec_parser.hpp"
#include "spec_detail.hpp"

namespace collapse {
namespace {

using spec_detail::format_number;

// Six significant digits: enough to tell grid points apart at a glance.
std::string short_number(double value) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.6g", value);
    return buffer;
}

// Axes longer than this show their first and last values only.
constexpr std::size_t max_listed_values = 8;

std::string axis_value_text(const Axis& axis, double value) {
    if (axis.type == Axis::Type::boolean) return value != 0.0 ? "true" : "false";
    return short_number(value);
}

std::string axis_values_text(const Axis& axis) {
    const std::size_t count = axis.values.size();
    std::string text;
    const auto append = [&](std::size_t index) {
        if (!text.empty()) text += ", ";
        text += axis_value_text(axis, axis.values[index]);
    };
    if (count <= max_listed_values) {
        for (std::size_t index = 0; index < count; ++index) append(index);
    } else {
        for (std::size_t index = 0; index < 3; ++index) append(index);
        text += ", ...";
        for (std::size_t index = count - 2; index < count; ++index) append(index);
    }
    if (axis.log_spaced) text += "  (log-spaced)";
    return text;
}

// 3 significant digits with an SI prefix: "5.12 G".
std::string si_text(double value) {
    static const char* const prefixes[] = {"", "k", "M", "G", "T", "P", "E", "Z", "Y"};
    std::size_t prefix = 0;
    while (std::abs(value) >= 1000.0 && prefix + 1 < std::size(prefixes)) {
        value /= 1000.0;
        ++prefix;
    }
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.3g %s", value, prefixes[prefix]);
    return buffer;
}

std::string scientific_text(double value) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.3g", value);
    return buffer;
}

bool is_axis(const SweepSpec& spec, std::string_view name) {
    for (const Axis& axis : spec.axes)
        if (axis.name == name) return true;
    return false;
}

} // namespace

// FLOP of one gradient evaluation (SPEC §8): the factored head update costs
// about 6 N d^2 + 2 K d^2 + 2 d^2 h, the plain model one pass over X and the
// label sums, about 4 N d. The teacher-student encoder adds x = E u and
// dL/dE = sum_i (dL/dx_i) u_i^T, 2 N d p each.
double gradient_flop(const ModelShape& shape, int head_dim) {
    const double samples = shape.samples(), classes = shape.classes, dim = shape.dim;
    double flop = head_dim > 0 ? 6.0 * samples * dim * dim + 2.0 * classes * dim * dim + 2.0 * dim * dim * head_dim
                               : 4.0 * samples * dim;
    if (shape.kind == ModelKind::teacher_student) flop += 4.0 * samples * dim * shape.input_dim;
    return flop;
}

std::string describe_sweep(const SweepSpec& spec) {
    std::ostringstream out;
    const ModelShape& shape = spec.shape;
    const bool teacher_student = shape.kind == ModelKind::teacher_student;

    out << "sweep file    " << spec.source_path << '\n';
    for (const std::string& override_text : spec.overrides) out << "  --set       " << override_text << '\n';

    out << "model         " << (teacher_student ? "teacher_student" : "embedding") << ": K = " << shape.classes
        << " classes, n = " << shape.samples_per_class << " samples per class (N = " << shape.samples()
        << "), d = " << shape.dim;
    if (teacher_student) out << ", input_dim p = " << shape.input_dim;
    if (!is_axis(spec, "init_scale")) out << ", init_scale " << format_number(spec.defaults.init_scale);
    if (!is_axis(spec, "stop_gradient")) out << ", stop_gradient " << (spec.defaults.stop_gradient ? "true" : "false");
    out << '\n';

    const bool rk4 = spec.integrator.method == IntegratorMethod::rk4;
    out << "integrator    " << (rk4 ? "rk4" : "gd") << ", max_steps " << spec.integrator.max_steps << ", "
        << (spec.integrator.precision == Precision::float32 ? "float32" : "float64") << '\n';
    out << "collapse      " << (spec.collapse.metric == CollapseMetric::label ? "label" : "projected")
        << " distance < " << format_number(spec.collapse.threshold)
        << (spec.collapse.stop_on_collapse ? ", stop on collapse" : ", run on after collapse") << '\n';
    out << "output        ";
    if (spec.output.record_every > 0) out << "a record point every " << spec.output.record_every << " steps";
    else out << spec.output.record_points << " record points";
    out << ", compression " << spec.output.compression;
    if (spec.output.save_samples) out << ", save_samples";
    if (spec.output.save_initial) out << ", save_initial";
    out << '\n';

    out << "grid          " << spec.axes.size() << " axes in spec order, seed last\n";
    std::size_t name_width = 4;
    for (const Axis& axis : spec.axes) name_width = std::max(name_width, axis.name.size());
    std::int64_t trajectories = spec.seeds;
    std::string shape_text;
    for (const Axis& axis : spec.axes) {
        const std::size_t count = axis.values.size();
        trajectories *= static_cast<std::int64_t>(count);
        shape_text += std::to_string(count) + " x ";
        out << "  " << axis.name << std::string(name_width - axis.name.size() + 2, ' ') << count
            << (count == 1 ? " value:  " : " values: ") << axis_values_text(axis) << '\n';
    }
    shape_text += std::to_string(spec.seeds);
    out << "  seed" << std::string(name_width - 4 + 2, ' ') << spec.seeds << (spec.seeds == 1 ? " seed, " : " seeds, ")
        << "master seed " << spec.master_seed << '\n';
    out << "trajectories  " << trajectories << " (" << shape_text << ")\n";

    // Cost summed over head_dim, the one axis that changes the cost per step.
    std::vector<int> head_dims;
    for (const Axis& axis : spec.axes)
        if (axis.name == "head_dim")
            for (double value : axis.values) head_dims.push_back(static_cast<int>(value));
    if (head_dims.empty()) head_dims.push_back(spec.defaults.head_dim);
    double flop_per_step_sum = 0.0;
    for (int head_dim : head_dims) flop_per_step_sum += gradient_flop(shape, head_dim);
    const double evaluations_per_step = rk4 ? 4.0 : 1.0;
    const double steps = static_cast<double>(trajectories) * static_cast<double>(spec.integrator.max_steps);
    const double flop = steps / static_cast<double>(head_dims.size()) * flop_per_step_sum * evaluations_per_step;
    out << "cost          at most " << scientific_text(steps) << " trajectory-steps, " << scientific_text(flop)
        << " FLOP (" << si_text(flop) << "FLOP";
    if (rk4) out << ", rk4: 4 gradient evaluations per step";
    out << ")" << (spec.collapse.stop_on_collapse ? "; trajectories that collapse or diverge stop early" : "") << '\n';
    return out.str();
}

} // namespace collapse
