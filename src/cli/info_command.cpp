// `collapse-sweep info` and `merge`: read-side commands.
#include <algorithm>
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

} // namespace

int info_command(const std::string& path) {
    const storage::ResultReader reader(path);
    const std::vector<std::string> names = reader.axis_names();
    const std::vector<std::vector<double>> values = reader.axis_values();
    std::cout << path << "\n  format " << reader.attribute("format") << " v" << reader.attribute("format_version")
              << ", written by collapse-sweep " << reader.attribute("tool_version") << " (" << reader.attribute("git_sha")
              << ")\n  created " << reader.attribute("creation_time") << " on " << reader.attribute("backend") << " ["
              << reader.attribute("device_name") << "], " << reader.attribute("precision") << "\n  command: "
              << reader.attribute("command_line") << "\n  spec sha256 " << reader.attribute("spec_sha256") << "\naxes:\n";
    for (std::size_t a = 0; a < names.size(); ++a)
        std::cout << "  " << std::left << std::setw(14) << names[a] << std::right << std::setw(6) << values[a].size()
                  << "  [" << compact_values(values[a]) << "]\n";

    const std::vector<std::int8_t> status = reader.status();
    std::int64_t counts[4] = {0, 0, 0, 0}; // not run, stable, collapsed, diverged
    for (std::int8_t s : status) ++counts[s < 0 ? 0 : std::min<int>(s, 2) + 1];
    const auto total = static_cast<double>(status.size());
    const auto done = static_cast<double>(status.size()) - static_cast<double>(counts[0]);
    std::cout << "progress: " << static_cast<std::int64_t>(done) << " / " << status.size() << " trajectories ("
              << std::fixed << std::setprecision(1) << (total > 0 ? 100.0 * done / total : 100.0) << "%)\n"
              << "status: not run " << counts[0] << ", stable " << counts[1] << ", collapsed " << counts[2]
              << ", diverged " << counts[3] << '\n';
    return exit_ok;
}

int merge_command(const std::string& output_path, const std::vector<std::string>& shard_paths, bool overwrite) {
    const storage::MergeReport report = storage::merge_shards(output_path, shard_paths, overwrite);
    std::cout << "merged " << shard_paths.size() << " shards into " << output_path << ": " << report.trajectories
              << " trajectories, " << report.not_run << " not run yet\n";
    return exit_ok;
}

} // namespace collapse::cli
