// Error log, typed reads of TOML values, and the key schema of a sweep file.
#include <algorithm>
#include <charconv>
#include <cmath>

#include "collapse/sweep/spec_parser.hpp"
#include "spec_detail.hpp"

namespace collapse::spec_detail {

// ---- ErrorLog ---------------------------------------------------------------

void ErrorLog::at_node(const std::string& key_path, const toml::node& node, const std::string& reason) {
    at_line(key_path, node.source().begin.line, reason);
}

void ErrorLog::at_line(const std::string& key_path, std::uint32_t line, const std::string& reason) {
    if (const auto found = overridden_.find(key_path); found != overridden_.end()) {
        at_override(key_path, found->second, reason);
        return;
    }
    std::string text = source_name_ + ":" + std::to_string(line) + ": ";
    if (!key_path.empty()) text += key_path + ": ";
    entries_.push_back({false, line, text + reason});
}

void ErrorLog::at_override(const std::string& key_path, std::size_t override_index, const std::string& reason) {
    entries_.push_back({true, override_index, "--set " + key_path + ": " + reason});
}

void ErrorLog::throw_if_any() const {
    if (entries_.empty()) return;
    std::vector<Entry> sorted = entries_;
    std::stable_sort(sorted.begin(), sorted.end(), [](const Entry& a, const Entry& b) {
        if (a.from_override != b.from_override) return !a.from_override;
        return a.position < b.position;
    });
    std::string message;
    for (const Entry& entry : sorted) {
        if (!message.empty()) message += '\n';
        message += entry.text;
    }
    throw SpecError(message);
}

// ---- values -----------------------------------------------------------------

std::string format_number(double value) {
    if (std::isnan(value)) return "nan";
    if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
    char buffer[64];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
    return std::string(buffer, result.ptr);
}

std::string_view type_name(const toml::node& node) {
    switch (node.type()) {
    case toml::node_type::string: return "string";
    case toml::node_type::integer: return "integer";
    case toml::node_type::floating_point: return "float";
    case toml::node_type::boolean: return "boolean";
    case toml::node_type::date: return "date";
    case toml::node_type::time: return "time";
    case toml::node_type::date_time: return "date-time";
    case toml::node_type::array: return "array";
    case toml::node_type::table: return "table";
    case toml::node_type::none: break;
    }
    return "nothing";
}

std::string type_mismatch(std::string_view expected, const toml::node& node) {
    return "expected " + std::string(expected) + ", got " + std::string(type_name(node));
}

std::string real_range_violation(double value, const RealRange& range) {
    if (!std::isfinite(value)) return "value " + format_number(value) + " is not a finite number";
    const bool below = range.low_open ? !(value > range.low) : !(value >= range.low);
    const bool above = range.high_open ? !(value < range.high) : !(value <= range.high);
    if (!below && !above) return {};
    const std::string text = "value " + format_number(value);
    if (std::isinf(range.high)) return text + " must be " + (range.low_open ? "> " : ">= ") + format_number(range.low);
    return text + " outside " + (range.low_open ? "(" : "[") + format_number(range.low) + ", " +
           format_number(range.high) + (range.high_open ? ")" : "]");
}

std::string integer_range_violation(std::int64_t value, const IntegerRange& range) {
    if (value >= range.low && value <= range.high) return {};
    const std::string text = "value " + std::to_string(value);
    // Upper bounds that only reflect the storage type read better as "too large".
    const bool natural_high = range.high >= int_max;
    if (natural_high && value < range.low) return text + " must be >= " + std::to_string(range.low);
    if (natural_high) return text + " too large (at most " + std::to_string(range.high) + ")";
    return text + " outside [" + std::to_string(range.low) + ", " + std::to_string(range.high) + "]";
}

std::optional<double> read_number(const toml::node& node, const RealRange& range, std::string& reason) {
    double value = 0.0;
    if (const auto* integer = node.as_integer()) value = static_cast<double>(integer->get());
    else if (const auto* floating = node.as_floating_point()) value = floating->get();
    else {
        reason = type_mismatch("a number", node);
        return std::nullopt;
    }
    reason = real_range_violation(value, range);
    if (!reason.empty()) return std::nullopt;
    return value;
}

std::optional<std::int64_t> read_integer(const toml::node& node, const IntegerRange& range, std::string& reason) {
    const auto* integer = node.as_integer();
    if (!integer) {
        reason = type_mismatch("an integer", node);
        return std::nullopt;
    }
    reason = integer_range_violation(integer->get(), range);
    if (!reason.empty()) return std::nullopt;
    return integer->get();
}

std::optional<bool> read_boolean(const toml::node& node, std::string& reason) {
    const auto* boolean = node.as_boolean();
    if (!boolean) {
        reason = type_mismatch("a boolean", node);
        return std::nullopt;
    }
    return boolean->get();
}

// ---- schema -----------------------------------------------------------------

const std::vector<SectionSchema>& sweep_sections() {
    static const std::vector<SectionSchema> sections = {
        {"model", {"kind", "classes", "samples_per_class", "dim", "init_scale", "stop_gradient", "input_dim"}},
        {"integrator", {"method", "max_steps", "precision"}},
        {"grid", {"frustration", "head_dim", "lr", "stop_gradient", "init_scale", "seeds", "seed"}},
        {"collapse", {"metric", "threshold", "stop_on_collapse"}},
        {"output", {"record_points", "record_every", "save_samples", "save_initial", "compression"}},
    };
    return sections;
}

const SectionSchema* find_section(std::string_view name) {
    for (const SectionSchema& section : sweep_sections())
        if (section.name == name) return &section;
    return nullptr;
}

const SectionSchema* section_knowing(std::string_view key, std::string_view except) {
    for (const SectionSchema& section : sweep_sections())
        if (section.name != except && std::find(section.keys.begin(), section.keys.end(), key) != section.keys.end())
            return &section;
    return nullptr;
}

bool is_shape_key(std::string_view key) {
    return key == "kind" || key == "classes" || key == "samples_per_class" || key == "dim" || key == "input_dim";
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> previous(b.size() + 1), current(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) previous[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        current[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitution});
        }
        std::swap(previous, current);
    }
    return previous[b.size()];
}

std::string_view closest_name(std::string_view word, const std::vector<std::string_view>& candidates) {
    std::string_view best;
    std::size_t best_distance = 3;
    for (std::string_view candidate : candidates) {
        const std::size_t distance = edit_distance(word, candidate);
        // A distance as long as the word itself is a rewrite, not a typo.
        if (distance < best_distance && distance < word.size()) {
            best = candidate;
            best_distance = distance;
        }
    }
    return best;
}

std::string did_you_mean(std::string_view word, const std::vector<std::string_view>& candidates,
                         std::string_view open_quote, std::string_view close_quote) {
    const std::string_view best = closest_name(word, candidates);
    if (best.empty()) return {};
    return " (did you mean " + std::string(open_quote) + std::string(best) + std::string(close_quote) + "?)";
}

// ---- SectionReader ------------------------------------------------------------

std::optional<std::int64_t> SectionReader::integer(std::string_view key, const IntegerRange& range) {
    const toml::node* node = find(key);
    if (!node) return std::nullopt;
    std::string reason;
    auto value = read_integer(*node, range, reason);
    if (!value) log_.at_node(path(key), *node, reason);
    return value;
}

std::optional<double> SectionReader::real(std::string_view key, const RealRange& range) {
    const toml::node* node = find(key);
    if (!node) return std::nullopt;
    std::string reason;
    auto value = read_number(*node, range, reason);
    if (!value) log_.at_node(path(key), *node, reason);
    return value;
}

std::optional<bool> SectionReader::boolean(std::string_view key) {
    const toml::node* node = find(key);
    if (!node) return std::nullopt;
    std::string reason;
    auto value = read_boolean(*node, reason);
    if (!value) log_.at_node(path(key), *node, reason);
    return value;
}

std::optional<std::size_t> SectionReader::choice(std::string_view key, std::initializer_list<std::string_view> choices) {
    const toml::node* node = find(key);
    if (!node) return std::nullopt;
    const auto* text = node->as_string();
    if (!text) {
        log_.at_node(path(key), *node, type_mismatch("a string", *node));
        return std::nullopt;
    }
    const std::vector<std::string_view> names(choices);
    for (std::size_t index = 0; index < names.size(); ++index)
        if (names[index] == text->get()) return index;
    std::string allowed;
    for (std::size_t index = 0; index < names.size(); ++index) {
        if (index > 0) allowed += index + 1 == names.size() ? " or " : ", ";
        // Appended piece by piece: "\"" + std::string(...) trips GCC 12's false -Wrestrict.
        allowed.append(1, '"').append(names[index]).append(1, '"');
    }
    log_.at_node(path(key), *node,
                 "unknown value \"" + text->get() + "\" (expected " + allowed + ")" +
                     did_you_mean(text->get(), names, "\"", "\""));
    return std::nullopt;
}

void SectionReader::reject_unknown_keys() {
    if (!table_) return;
    const SectionSchema* schema = find_section(section_);
    for (auto&& [key, node] : *table_) {
        const std::string_view name = key.str();
        if (std::find(schema->keys.begin(), schema->keys.end(), name) != schema->keys.end()) continue;
        std::string reason = "unknown key '" + std::string(name) + "' in [" + section_ + "]";
        const std::string suggestion = did_you_mean(name, schema->keys);
        if (!suggestion.empty()) reason += suggestion;
        else if (const SectionSchema* home = section_knowing(name, section_))
            reason += ": it belongs in [" + std::string(home->name) + "]";
        log_.at_node(path(name), node, reason);
    }
}

} // namespace collapse::spec_detail
