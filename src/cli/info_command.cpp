// `collapse-sweep info` and `merge`: read-side commands.
#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>
#include <iostream>

#include "collapse/storage/result_reader.hpp"
#include "collapse/storage/merge.hpp"
#include "commands.hpp"

namespace collapse::cli {
namespace {

std::string compact_values(const std::vector<double>& values) {
    std::ostringstream text;
    text << std::setprecision(6);
    const std::size_t shown = values.size() <= 8 ? values.size() : 3;
    for (std::size_t v = 0; v < shown; ++v) text << (v ? ", " : "") << values[v];
    if (shown < values.size()) text << ", ..., " << values.back();
    return text.str();
}

// 0, 1, ..., count - 1 as compact_values shows it, exact however large.
std::string counting_values(std::int64_t count) {
    std::string text;
    const std::int64_t shown = count <= 8 ? count : 3;
    for (std::int64_t v = 0; v < shown; ++v) text += (v ? ", " : "") + std::to_string(v);
    if (shown < count) text += ", ..., " + std::to_string(count - 1);
    return text;
}

std::string one_line(std::string text) {
    for (std::size_t at = text.find('\n'); at != std::string::npos; at = text.find('\n', at)) text.replace(at, 1, ", ");
    return text;
}

// A number attribute in the shortest form that reads back ("0.05", not 0.050000000000000003).
std::string number(const std::string& text) {
    if (text.empty()) return "?";
    std::ostringstream out;
    out << std::stod(text);
    return out.str();
}

std::string flag_text(const std::string& value) { return value == "1" ? "true" : "false"; }

// Model, integrator, collapse and output settings from the root attributes.
void print_settings(const storage::ResultReader& reader) {
    const auto get = [&](const std::string& name) { return reader.has_attribute(name) ? reader.attribute(name) : "?"; };
    const bool teacher = get("kind") == "teacher_student";
    std::cout << "model: " << get("kind") << ", K = " << get("classes") << ", n = " << get("samples_per_class")
              << " (N = " << get("samples") << "), d = " << get("dim");
    if (teacher) std::cout << ", p = " << get("input_dim");
    std::cout << ", h_max = " << get("max_head_dim");
    // Fixed trajectory parameters (the others are axes).
    for (const char* name : {"frustration", "head_dim", "lr", "stop_gradient", "init_scale"})
        if (reader.has_attribute(name))
            std::cout << ", " << name << " = " << (std::string(name) == "stop_gradient" ? flag_text(get(name)) : get(name));
    std::cout << "\nintegrator: " << get("method") << ", max_steps " << get("max_steps") << ", " << get("precision")
              << "\ncollapse: " << get("collapse_metric") << " distance < " << std::stod(get("collapse_threshold"))
              << (get("stop_on_collapse") == "1" ? ", stop on collapse" : ", run on after collapse") << "\noutput: ";
    if (reader.has_attribute("record_every") && get("record_every") != "0")
        std::cout << "a record point every " << get("record_every") << " steps";
    else std::cout << get("record_points") << " record points";
    std::cout << ", save_samples " << flag_text(get("save_samples")) << ", save_initial " << flag_text(get("save_initial"))
              << ", seeds " << get("seeds") << ", master seed " << get("master_seed") << '\n';
}

// /boundaries/<axis> groups written by `refine`.
void print_boundaries(const storage::ResultReader& reader) {
    bool any = false;
    for (const std::string axis : {"frustration", "lr"}) {
        const std::string group = "/boundaries/" + axis;
        if (!reader.has_dataset(group + "/estimate")) continue;
        if (!any) std::cout << "boundaries:\n";
        any = true;
        const std::vector<double> estimate = reader.read_doubles(group + "/estimate");
        std::vector<double> found;
        for (double value : estimate)
            if (std::isfinite(value)) found.push_back(value);
        std::cout << "  " << axis << ": " << reader.object_attribute(group, "quantity") << " = "
                  << number(reader.object_attribute(group, "level")) << ", tol " << number(reader.object_attribute(group, "tol"))
                  << "; " << found.size() << " of " << estimate.size() << " boundaries found";
        if (!found.empty())
            std::cout << ", estimates " << *std::min_element(found.begin(), found.end()) << " to "
                      << *std::max_element(found.begin(), found.end());
        std::cout << "; " << number(reader.object_attribute(group, "trajectories_run")) << " trajectories, made "
                  << reader.object_attribute(group, "creation_time") << '\n';
    }
    if (!any) std::cout << "boundaries: none (see `collapse-sweep refine`)\n";
}

} // namespace

int info_command(const std::string& path) {
    const storage::ResultReader reader(path);
    const std::vector<std::string> names = reader.axis_names();
    const std::vector<std::int64_t> shape = reader.shape();
    // The seed coordinate is 0 .. seeds - 1: not read (10^8 seeds were 800 MB and 7 s).
    std::vector<std::vector<double>> values;
    for (std::size_t a = 0; a < names.size(); ++a)
        values.push_back(names[a] == "seed" ? std::vector<double>{} : reader.read_doubles("/results/" + names[a]));
    std::cout << path << "\n  format " << reader.attribute("format") << " v" << reader.attribute("format_version")
              << ", written by collapse-sweep " << reader.attribute("tool_version") << " (" << reader.attribute("git_sha")
              << ")\n  created " << reader.attribute("creation_time") << " on " << reader.attribute("backend") << " ["
              << reader.attribute("device_name") << "], " << reader.attribute("precision") << "\n  command: "
              << reader.attribute("command_line") << "\n  spec sha256 " << reader.attribute("spec_sha256") << '\n';
    if (reader.has_attribute("merged_shards"))
        std::cout << "  merged: a virtual (VDS) file over " << one_line(reader.attribute("merged_shards")) << " (merged "
                  << reader.attribute("merge_time") << "); the shard files must stay beside it\n";
    else if (reader.shard().count > 1)
        std::cout << "  shard " << reader.shard().index << " of " << reader.shard().count << " (flat indices "
                  << reader.shard().begin << " to " << reader.shard().end << ")\n";
    else std::cout << "  not merged: a plain file\n";
    print_settings(reader);
    std::cout << "axes:\n";
    for (std::size_t a = 0; a < names.size(); ++a)
        std::cout << "  " << std::left << std::setw(14) << names[a] << std::right << std::setw(6) << shape[a] << "  ["
                  << (names[a] == "seed" ? counting_values(shape[a]) : compact_values(values[a])) << "]\n";

    const std::array<std::int64_t, 4> counts = reader.status_counts(); // not run, stable, collapsed, diverged
    std::int64_t size = 1;
    for (std::int64_t length : shape) size *= length;
    const auto total = static_cast<double>(size);
    const auto done = static_cast<double>(size - counts[0]);
    std::cout << "progress: " << static_cast<std::int64_t>(done) << " / " << size << " trajectories ("
              << std::fixed << std::setprecision(1) << (total > 0 ? 100.0 * done / total : 100.0) << "%)\n"
              << "status: not run " << counts[0] << ", stable " << counts[1] << ", collapsed " << counts[2]
              << ", diverged " << counts[3] << '\n';
    print_boundaries(reader);
    return exit_ok;
}

int merge_command(const std::string& output_path, const std::vector<std::string>& shard_paths, bool overwrite) {
    const storage::MergeReport report = storage::merge_shards(output_path, shard_paths, overwrite);
    std::cout << "merged " << shard_paths.size() << " shards into " << output_path << ": " << report.trajectories
              << " trajectories, " << report.not_run << " not run yet\n";
    return exit_ok;
}

} // namespace collapse::cli
