// The sweep file (SPEC §4): TOML text plus --set overrides in, a checked
// SweepSpec out. The reference for every key is docs/sweep-file.md.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "collapse/config.hpp"

namespace collapse {

// A spec that cannot be used. The message holds one line per problem, each
// `FILE:LINE: section.key: reason` (or `--set section.key: reason` for an
// override); the CLI maps it to exit code 2.
struct SpecError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Bounds beyond which a spec is refused (docs/sweep-file.md, "Limits"): the
// file's whole-grid bookkeeping (status array, coordinates) and the traces
// would cost more than any run could use.
inline constexpr std::int64_t max_seeds = 1'000'000'000;
inline constexpr std::int64_t max_grid_trajectories = 10'000'000'000;
inline constexpr std::int64_t max_record_points = 1'000'000;
// A sweep file is a page of TOML; anything larger is not one.
inline constexpr std::int64_t max_spec_file_bytes = 64 << 20;

// The text of a sweep file, read with the size bound; directories, FIFOs,
// devices and other non-regular files are refused (SpecError).
std::string read_spec_file(const std::string& path);

// Reads and checks a sweep file. Each override is `section.key=value` with the
// value in TOML syntax; they are applied in order before any check.
SweepSpec parse_sweep_spec_file(const std::string& path, const std::vector<std::string>& overrides = {});

// The same for text already in memory; source_name stands for the file in
// error messages and in SweepSpec::source_path.
SweepSpec parse_sweep_spec_text(std::string_view text, const std::string& source_name,
                                const std::vector<std::string>& overrides = {});

// A human summary for `collapse-sweep validate`: model, integrator, every axis
// with its values, seeds, the trajectory count and a cost estimate.
std::string describe_sweep(const SweepSpec& spec);

// FLOP of one gradient evaluation of one trajectory at head width `head_dim`
// (the count `validate` prints; docs/performance.md).
double gradient_flop(const ModelShape& shape, int head_dim);

} // namespace collapse
