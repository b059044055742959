// The sweep file: TOML text and --set overrides to a checked SweepSpec.
#include "collapse/sweep/spec_parser.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <utility>

#include "collapse/model/validate.hpp" // max_supported_dim
#include "spec_detail.hpp"

namespace collapse {
namespace {

using namespace spec_detail;

// Where a [grid] key was written: axes run in file order, and keys that only
// an override introduced come after every key of the file, in --set order.
using GridKeyOrder = std::map<std::string, std::pair<std::uint64_t, std::uint64_t>, std::less<>>;

GridKeyOrder record_grid_key_order(const toml::table& root) {
    GridKeyOrder order;
    if (const toml::table* grid = root["grid"].as_table())
        for (auto&& [key, node] : *grid) {
            const toml::source_position begin = node.source().begin;
            order[std::string(key.str())] = {begin.line, begin.column};
        }
    return order;
}

std::string_view trim(std::string_view text) {
    const auto is_space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
    while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
    while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
    return text;
}

bool is_bare_word(std::string_view text, std::string_view extra_characters) {
    if (text.empty()) return false;
    return std::all_of(text.begin(), text.end(), [&](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || extra_characters.find(c) != std::string_view::npos;
    });
}

// The value of one --set, read as TOML into a one-key table {value = ...}. A
// shell eats the quotes of model.kind="teacher_student", so a bare word that
// is not TOML reads as a string.
std::optional<toml::table> parse_override_value(std::string_view value_text, std::string& reason) {
    try {
        const std::string snippet_text = "value = " + std::string(value_text) + "\n";
        if (const auto place = non_ascii_outside_strings(snippet_text)) {
            reason = "malformed value '" + std::string(value_text) + "': a non-ASCII character " + place->where;
            return std::nullopt;
        }
        toml::table snippet = toml::parse(std::string_view(snippet_text), std::string_view("--set"));
        if (snippet.size() == 1 && snippet.contains("value")) return snippet;
        reason = "malformed value '" + std::string(value_text) + "': more than one value";
    } catch (const toml::parse_error& error) {
        if (is_bare_word(value_text, "_-.+")) {
            toml::table snippet;
            snippet.insert("value", std::string(value_text));
            return snippet;
        }
        reason = "malformed value '" + std::string(value_text) + "': " + std::string(error.description());
    }
    return std::nullopt;
}

std::vector<std::string_view> section_names() {
    std::vector<std::string_view> names;
    for (const SectionSchema& section : sweep_sections()) names.push_back(section.name);
    return names;
}

void apply_overrides(toml::table& root, const std::vector<std::string>& overrides, GridKeyOrder& grid_order,
                     ErrorLog& log) {
    for (std::size_t index = 0; index < overrides.size(); ++index) {
        const std::string_view text = overrides[index];
        const std::size_t equals = text.find('=');
        const std::string_view target = trim(text.substr(0, equals));
        const std::size_t dot = target.find('.');
        const std::string shown_target = target.empty() ? std::string(text) : std::string(target);
        if (equals == std::string_view::npos || dot == std::string_view::npos) {
            log.at_override(shown_target, index, "expected section.key=value (for example grid.lr=0.1)");
            continue;
        }
        const std::string section(target.substr(0, dot));
        const std::string key(target.substr(dot + 1));
        if (!is_bare_word(section, "_-") || !is_bare_word(key, "_-")) {
            log.at_override(shown_target, index,
                            "expected section.key=value with one section and one key "
                            "(a range is grid.frustration={linspace=[0,0.3,4]})");
            continue;
        }
        const std::string_view value_text = trim(text.substr(equals + 1));
        if (value_text.empty()) {
            log.at_override(shown_target, index, "missing value after '='");
            continue;
        }
        std::string reason;
        std::optional<toml::table> snippet = parse_override_value(value_text, reason);
        if (!snippet) {
            log.at_override(shown_target, index, reason);
            continue;
        }
        if (!find_section(section)) {
            log.at_override(shown_target, index,
                            "unknown section [" + section + "]" + did_you_mean(section, section_names(), "[", "]"));
            continue;
        }
        if (!root.contains(section)) root.insert(section, toml::table{});
        toml::table* table = root.get(section)->as_table();
        if (!table) {
            log.at_override(shown_target, index, "[" + section + "] in the file is not a table");
            continue;
        }
        if (section == "grid" && !grid_order.count(key)) grid_order[key] = {UINT64_MAX, index};
        table->insert_or_assign(key, std::move(*snippet->get("value")));
        log.mark_overridden(shown_target, index);
    }
}

// Top-level keys must be the known sections, each a table.
void check_sections(const toml::table& root, ErrorLog& log) {
    for (auto&& [key, node] : root) {
        const std::string name(key.str());
        if (find_section(name)) {
            if (!node.is_table())
                log.at_node(name, node, "expected a section [" + name + "], got " + std::string(type_name(node)));
        } else if (const SectionSchema* home = section_knowing(name, "")) {
            log.at_node(name, node,
                        "'" + name + "' must be inside a section: it belongs in [" + std::string(home->name) + "]");
        } else {
            log.at_node(name, node, "unknown section [" + name + "]" + did_you_mean(name, section_names(), "[", "]"));
        }
    }
}

const toml::table* section_table(const toml::table& root, std::string_view name) {
    const toml::node* node = root.get(name);
    return node ? node->as_table() : nullptr;
}

void read_model(const toml::table& root, SweepSpec& spec, ErrorLog& log) {
    SectionReader model(section_table(root, "model"), "model", log);
    model.reject_unknown_keys();
    ModelShape& shape = spec.shape;
    const auto kind = model.choice("kind", {"embedding", "teacher_student"});
    if (kind) shape.kind = *kind == 0 ? ModelKind::embedding : ModelKind::teacher_student;
    const auto classes = model.integer("classes", {2, int_max});
    if (classes) shape.classes = static_cast<int>(*classes);
    const auto samples_per_class = model.integer("samples_per_class", {1, int_max});
    if (samples_per_class) shape.samples_per_class = static_cast<int>(*samples_per_class);
    if (auto dim = model.integer("dim", {1, max_supported_dim})) shape.dim = static_cast<int>(*dim);
    if (auto init_scale = model.real("init_scale", positive_reals)) spec.defaults.init_scale = *init_scale;
    if (auto stop_gradient = model.boolean("stop_gradient")) spec.defaults.stop_gradient = *stop_gradient;

    // A key that is absent keeps its default; one that failed its check stops
    // the checks that depend on it, so one mistake gives one message.
    const auto usable = [&](std::string_view key, bool read) { return read || !model.find(key); };
    const toml::node* input_dim_node = model.find("input_dim");
    if (shape.kind == ModelKind::teacher_student) {
        if (auto input_dim = model.integer("input_dim", {1, int_max})) shape.input_dim = static_cast<int>(*input_dim);
        else if (!input_dim_node)
            log.at_line(model.path("input_dim"), model.line(), "required when kind = \"teacher_student\"");
    } else if (input_dim_node && usable("kind", kind.has_value())) {
        log.at_node(model.path("input_dim"), *input_dim_node,
                    "only applies to kind = \"teacher_student\" (this model is \"embedding\")");
    }

    const std::int64_t samples = static_cast<std::int64_t>(shape.classes) * shape.samples_per_class;
    if (usable("classes", classes.has_value()) && usable("samples_per_class", samples_per_class.has_value()) &&
        samples > int_max) {
        const std::string key = model.find("samples_per_class") ? "samples_per_class" : "classes";
        log.at_node(model.path(key), *model.find(key),
                    "classes * samples_per_class = " + std::to_string(samples) + " samples, more than " +
                        std::to_string(int_max));
    }
}

void read_integrator(const toml::table& root, SweepSpec& spec, ErrorLog& log) {
    SectionReader integrator(section_table(root, "integrator"), "integrator", log);
    integrator.reject_unknown_keys();
    if (auto method = integrator.choice("method", {"gd", "rk4"}))
        spec.integrator.method = *method == 0 ? IntegratorMethod::gd : IntegratorMethod::rk4;
    if (auto max_steps = integrator.integer("max_steps", {1, IntegerRange{}.high})) spec.integrator.max_steps = *max_steps;
    if (auto precision = integrator.choice("precision", {"float32", "float64"}))
        spec.integrator.precision = *precision == 0 ? Precision::float32 : Precision::float64;
}

void read_collapse(const toml::table& root, SweepSpec& spec, ErrorLog& log) {
    SectionReader collapse(section_table(root, "collapse"), "collapse", log);
    collapse.reject_unknown_keys();
    if (auto metric = collapse.choice("metric", {"label", "projected"}))
        spec.collapse.metric = *metric == 0 ? CollapseMetric::label : CollapseMetric::projected;
    if (auto threshold = collapse.real("threshold", open_unit_interval)) spec.collapse.threshold = *threshold;
    if (auto stop = collapse.boolean("stop_on_collapse")) spec.collapse.stop_on_collapse = *stop;
}

void read_output(const toml::table& root, SweepSpec& spec, ErrorLog& log) {
    SectionReader output(section_table(root, "output"), "output", log);
    output.reject_unknown_keys();
    if (auto points = output.integer("record_points", {2, max_record_points}))
        spec.output.record_points = static_cast<int>(*points);
    if (auto every = output.integer("record_every", {1, IntegerRange{}.high})) spec.output.record_every = *every;
    // Dense traces cost memory per trajectory like record_points do: the same bound.
    if (spec.output.record_every > 0 && spec.integrator.max_steps / spec.output.record_every + 1 > max_record_points)
        log.at_line("output.record_every", output.line(),
                    "a record point every " + std::to_string(spec.output.record_every) + " of " +
                        std::to_string(spec.integrator.max_steps) + " steps is more than " +
                        std::to_string(max_record_points) + " trace points; use a larger record_every");
    if (auto samples = output.boolean("save_samples")) spec.output.save_samples = *samples;
    if (auto initial = output.boolean("save_initial")) spec.output.save_initial = *initial;
    if (auto level = output.integer("compression", {0, 9})) spec.output.compression = static_cast<int>(*level);
}

std::string grid_key_rejection(std::string_view key) {
    const std::string name(key);
    if (is_shape_key(key))
        return "'" + name + "' cannot be a grid axis: it changes array shapes, which must be the same for every "
               "trajectory; set it in [model] and run one sweep per value";
    std::string axes;
    for (const AxisRule& rule : axis_rules()) axes += (axes.empty() ? "" : ", ") + std::string(rule.name);
    if (const SectionSchema* home = section_knowing(key, "grid"))
        return "'" + name + "' cannot be a grid axis: it belongs in [" + std::string(home->name) +
               "]; the grid can vary " + axes;
    std::vector<std::string_view> grid_keys = find_section("grid")->keys;
    return "unknown key '" + name + "' in [grid]" + did_you_mean(key, grid_keys) + "; the grid can vary " + axes +
           ", plus seeds (count) and seed (master seed)";
}

void read_grid(const toml::table& root, const GridKeyOrder& order, SweepSpec& spec, ErrorLog& log) {
    const toml::table* grid = section_table(root, "grid");
    const toml::table* model = section_table(root, "model");
    SectionReader reader(grid, "grid", log);
    if (auto seeds = reader.integer("seeds", {1, max_seeds})) spec.seeds = *seeds;
    if (auto seed = reader.integer("seed", {0, IntegerRange{}.high})) spec.master_seed = static_cast<std::uint64_t>(*seed);

    std::vector<std::pair<std::pair<std::uint64_t, std::uint64_t>, std::string>> keys_in_order;
    if (grid)
        for (auto&& [key, node] : *grid) keys_in_order.push_back({order.find(key.str())->second, std::string(key.str())});
    std::sort(keys_in_order.begin(), keys_in_order.end());

    std::vector<Axis> written_axes;
    std::vector<std::string> written_names;
    for (const auto& [position, name] : keys_in_order) {
        if (name == "seeds" || name == "seed") continue;
        const toml::node& node = *grid->get(name);
        const std::string path = "grid." + name;
        written_names.push_back(name);
        const AxisRule* rule = find_axis_rule(name);
        if (!rule) {
            log.at_node(path, node, grid_key_rejection(name));
            continue;
        }
        if (const toml::node* fixed = model ? model->get(name) : nullptr) {
            const std::string where = log.is_overridden("model." + name)
                                          ? "by --set model." + name
                                          : "in [model] (line " + std::to_string(fixed->source().begin.line) + ")";
            log.at_node(path, node, "also set " + where + "; a key is either fixed in [model] or an axis in [grid]");
            continue;
        }
        if (auto axis = read_axis(node, *rule, path, log)) written_axes.push_back(std::move(*axis));
    }

    // frustration, head_dim and lr are always axes, so every output file has them.
    for (const AxisRule& rule : axis_rules()) {
        if (!rule.always_axis) continue;
        if (std::find(written_names.begin(), written_names.end(), rule.name) != written_names.end()) continue;
        Axis axis;
        axis.name = std::string(rule.name);
        axis.type = rule.type;
        axis.values = {rule.default_value};
        spec.axes.push_back(std::move(axis));
    }
    for (Axis& axis : written_axes) spec.axes.push_back(std::move(axis));

    // Every output file holds the whole grid's status array and coordinates
    // (also a shard's), so a grid beyond this costs more in bookkeeping
    // than any run of it could use.
    std::int64_t trajectories = spec.seeds;
    bool too_many = false;
    for (const Axis& axis : spec.axes)
        too_many = too_many ||
                   __builtin_mul_overflow(trajectories, static_cast<std::int64_t>(axis.values.size()), &trajectories);
    if (too_many || trajectories > max_grid_trajectories) {
        std::string shape;
        for (const Axis& axis : spec.axes) shape += std::to_string(axis.values.size()) + " x ";
        log.at_line("grid", reader.line(),
                    "the grid has " + shape + std::to_string(spec.seeds) + " seeds = " +
                        (too_many ? std::string("more than 2^63-1") : std::to_string(trajectories)) +
                        " trajectories, more than the limit of " + std::to_string(max_grid_trajectories) +
                        "; split the sweep into several spec files");
    }
}

} // namespace

SweepSpec parse_sweep_spec_text(std::string_view text, const std::string& source_name,
                                const std::vector<std::string>& overrides) {
    toml::table root;
    if (const auto place = non_ascii_outside_strings(text))
        throw SpecError(source_name + ":" + std::to_string(place->line) + ": malformed TOML: a non-ASCII character " +
                        place->where);
    try {
        root = toml::parse(text, source_name);
    } catch (const toml::parse_error& error) {
        throw SpecError(source_name + ":" + std::to_string(error.source().begin.line) +
                        ": malformed TOML: " + std::string(error.description()));
    }

    ErrorLog log(source_name);
    GridKeyOrder grid_order = record_grid_key_order(root);
    apply_overrides(root, overrides, grid_order, log);

    SweepSpec spec;
    spec.source_path = source_name;
    spec.source_text = std::string(text);
    spec.overrides = overrides;
    check_sections(root, log);
    read_model(root, spec, log);
    read_integrator(root, spec, log);
    read_collapse(root, spec, log);
    read_output(root, spec, log);
    read_grid(root, grid_order, spec, log);
    log.throw_if_any();
    return spec;
}

SweepSpec parse_sweep_spec_file(const std::string& path, const std::vector<std::string>& overrides) {
    return parse_sweep_spec_text(read_spec_file(path), path, overrides);
}

} // namespace collapse
