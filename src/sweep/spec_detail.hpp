// Internals of the sweep-file parser shared by its source files: the error
// log, typed reads of TOML nodes, the key schema and the axis reader.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "collapse/config.hpp"

namespace collapse::spec_detail {

// Where a TOML text has a non-ASCII byte that toml++ 3.3 would run into
// undefined behaviour on (toml_guard.cpp); TOML allows none there.
struct NonAsciiPlace {
    std::uint64_t line = 0;
    const char* where = "";
};
std::optional<NonAsciiPlace> non_ascii_outside_strings(std::string_view text);

// Collects every problem before throwing, so one `validate` run lists them
// all. A key set by --set is reported against the override, since its line
// in the file (if any) is not where the value came from.
class ErrorLog {
public:
    explicit ErrorLog(std::string source_name) : source_name_(std::move(source_name)) {}

    // `override_index` orders override problems like the --set options.
    void mark_overridden(const std::string& key_path, std::size_t override_index) {
        overridden_[key_path] = override_index;
    }
    bool is_overridden(const std::string& key_path) const { return overridden_.count(key_path) != 0; }

    void at_node(const std::string& key_path, const toml::node& node, const std::string& reason);
    void at_line(const std::string& key_path, std::uint32_t line, const std::string& reason);
    void at_override(const std::string& key_path, std::size_t override_index, const std::string& reason);

    bool empty() const { return entries_.empty(); }
    // Throws SpecError with one line per problem: file problems by line, then overrides.
    void throw_if_any() const;

private:
    struct Entry {
        bool from_override;
        std::uint64_t position; // the line in the file, or the index of the --set
        std::string text;
    };
    std::string source_name_;
    std::map<std::string, std::size_t> overridden_;
    std::vector<Entry> entries_;
};

// ---- values -------------------------------------------------------------

// Shortest text that reads back as the same double ("0.1", "1e-05").
std::string format_number(double value);
std::string_view type_name(const toml::node& node);
// "expected an integer, got string"
std::string type_mismatch(std::string_view expected, const toml::node& node);

struct RealRange {
    double low = -std::numeric_limits<double>::infinity();
    double high = std::numeric_limits<double>::infinity();
    bool low_open = false;
    bool high_open = false;
};
inline constexpr RealRange unit_interval{0.0, 1.0, false, false};
inline constexpr RealRange open_unit_interval{0.0, 1.0, true, true};
inline constexpr RealRange positive_reals{0.0, std::numeric_limits<double>::infinity(), true, false};

struct IntegerRange {
    std::int64_t low = std::numeric_limits<std::int64_t>::min();
    std::int64_t high = std::numeric_limits<std::int64_t>::max();
};
inline constexpr std::int64_t int_max = std::numeric_limits<int>::max();

// Each returns the value, or nothing with `reason` set to why not.
std::optional<double> read_number(const toml::node& node, const RealRange& range, std::string& reason);
std::optional<std::int64_t> read_integer(const toml::node& node, const IntegerRange& range, std::string& reason);
std::optional<bool> read_boolean(const toml::node& node, std::string& reason);
std::string real_range_violation(double value, const RealRange& range);
std::string integer_range_violation(std::int64_t value, const IntegerRange& range);

// ---- schema ---------------------------------------------------------------

struct SectionSchema {
    std::string_view name;
    std::vector<std::string_view> keys;
};
const std::vector<SectionSchema>& sweep_sections();
const SectionSchema* find_section(std::string_view name);
// The section (other than `except`) that knows `key`, for "it belongs in [x]" hints.
const SectionSchema* section_knowing(std::string_view key, std::string_view except);
// Keys of [model] that fix array shapes and so may not be grid axes.
bool is_shape_key(std::string_view key);

std::size_t edit_distance(std::string_view a, std::string_view b);
// The closest candidate within edit distance 2, or "" when none is close.
std::string_view closest_name(std::string_view word, const std::vector<std::string_view>& candidates);
// " (did you mean 'classes'?)" or "".
std::string did_you_mean(std::string_view word, const std::vector<std::string_view>& candidates,
                         std::string_view open_quote = "'", std::string_view close_quote = "'");

// Typed reads of one [section] table; each problem goes to the log.
class SectionReader {
public:
    SectionReader(const toml::table* table, std::string_view section, ErrorLog& log)
        : table_(table), section_(section), log_(log) {}

    const toml::node* find(std::string_view key) const { return table_ ? table_->get(key) : nullptr; }
    std::uint32_t line() const { return table_ ? table_->source().begin.line : 0; }
    std::string path(std::string_view key) const { return section_ + "." + std::string(key); }

    std::optional<std::int64_t> integer(std::string_view key, const IntegerRange& range);
    std::optional<double> real(std::string_view key, const RealRange& range);
    std::optional<bool> boolean(std::string_view key);
    // The index of the string value among `choices`.
    std::optional<std::size_t> choice(std::string_view key, std::initializer_list<std::string_view> choices);

    // Logs every key not in the section's schema.
    void reject_unknown_keys();

private:
    const toml::table* table_;
    std::string section_;
    ErrorLog& log_;
};

// ---- grid axes -------------------------------------------------------------

struct AxisRule {
    std::string_view name;
    Axis::Type type;
    RealRange real_range;       // real axes
    IntegerRange integer_range; // integer axes
    double default_value;       // for the core axes that are always present
    bool always_axis;           // frustration, head_dim, lr
};
const std::vector<AxisRule>& axis_rules();
const AxisRule* find_axis_rule(std::string_view name);
// The most values one linspace/logspace may generate; guards against typos such as n = 1e9.
inline constexpr std::int64_t max_range_count = 1'000'000;

// An axis from a scalar, a list or {linspace|logspace = [a, b, n]}.
std::optional<Axis> read_axis(const toml::node& node, const AxisRule& rule, const std::string& key_path,
                              ErrorLog& log);

} // namespace collapse::spec_detail
