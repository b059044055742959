// Constants and helpers of the HDF5 output format (SPEC §6, docs/format.md)
// that callers outside the storage module need without touching HDF5.
#pragma once

#include <string>

#include "collapse/config.hpp"

namespace collapse::storage {

inline constexpr const char* format_name = "collapse-sweep";
inline constexpr int format_version = 1;

// The text the spec hash covers: the spec source, a newline, then the --set
// overrides joined by newlines. Two runs may share a file only if it matches.
std::string spec_hash_input(const SweepSpec& spec);

// Lower-case hex SHA-256 of spec_hash_input(spec); stored as `spec_sha256`.
std::string spec_sha256(const SweepSpec& spec);

// The current time as ISO 8601 UTC, e.g. "2026-05-09T07:35:25Z".
std::string utc_timestamp();

} // namespace collapse::storage
