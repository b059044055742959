// Grid axes: a scalar, a list, or {linspace|logspace = [a, b, n]}.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "collapse/sweep/axis_ranges.hpp"
#include "spec_detail.hpp"

namespace collapse::spec_detail {
namespace {

std::string_view expected_scalar(Axis::Type type) {
    switch (type) {
    case Axis::Type::integer: return "an integer";
    case Axis::Type::boolean: return "a boolean";
    case Axis::Type::real: break;
    }
    return "a number";
}

std::string axis_forms(Axis::Type type) {
    if (type == Axis::Type::boolean) return "an axis is a boolean or a list of booleans";
    const std::string plural = type == Axis::Type::integer ? "integers" : "numbers";
    return "an axis is " + std::string(expected_scalar(type)) + ", a list of " + plural +
           ", {linspace = [a, b, n]} or {logspace = [a, b, n]}";
}

// One value of an axis from a scalar node, stored as double like Axis::values.
std::optional<double> read_axis_value(const toml::node& node, const AxisRule& rule, std::string& reason) {
    switch (rule.type) {
    case Axis::Type::boolean:
        if (auto value = read_boolean(node, reason)) return *value ? 1.0 : 0.0;
        return std::nullopt;
    case Axis::Type::integer:
        if (auto value = read_integer(node, rule.integer_range, reason)) return static_cast<double>(*value);
        return std::nullopt;
    case Axis::Type::real: break;
    }
    return read_number(node, rule.real_range, reason);
}

// A generated value checked like a written one; integer axes need integral values.
std::string generated_value_violation(double& value, const AxisRule& rule) {
    if (rule.type == Axis::Type::real) return real_range_violation(value, rule.real_range);
    const double rounded = std::round(value);
    if (!std::isfinite(value) || std::abs(value - rounded) > 1e-9 * std::max(1.0, std::abs(value)))
        return "value " + format_number(value) + " is not an integer (" + std::string(rule.name) + " needs integers)";
    if (rounded < -9.0e18 || rounded > 9.0e18) return "value " + format_number(value) + " too large";
    value = rounded;
    return integer_range_violation(static_cast<std::int64_t>(rounded), rule.integer_range);
}

// {linspace = [a, b, n]} or {logspace = [a, b, n]}: n points from a to b, both
// included, evenly spaced (linspace) or evenly spaced in log10 (logspace).
bool read_range(const toml::table& table, const AxisRule& rule, const std::string& key_path, ErrorLog& log,
                Axis& axis) {
    const std::string form_text = "expected {linspace = [a, b, n]} or {logspace = [a, b, n]}";
    if (rule.type == Axis::Type::boolean) {
        log.at_node(key_path, table, type_mismatch("a boolean", table) + " (" + axis_forms(rule.type) + ")");
        return false;
    }
    if (table.size() != 1) {
        log.at_node(key_path, table, form_text + ", got a table with " + std::to_string(table.size()) + " keys");
        return false;
    }
    // The iterator owns the key/node pair it points at, so it must outlive them.
    const auto range_entry = table.cbegin();
    const toml::node& range_node = range_entry->second;
    const std::string_view kind = range_entry->first.str();
    if (kind != "linspace" && kind != "logspace") {
        log.at_node(key_path, range_node,
                    "unknown key '" + std::string(kind) + "' in an axis range" +
                        did_you_mean(kind, {"linspace", "logspace"}) + "; " + form_text);
        return false;
    }
    const std::string form = std::string(kind) + " must be exactly [a, b, n] (first, last, count), got ";
    const auto* triple = range_node.as_array();
    if (!triple) {
        const std::string_view type = type_name(range_node);
        const bool vowel = std::string_view("aeiou").find(type.front()) != std::string_view::npos;
        log.at_node(key_path, range_node, form + (vowel ? "an " : "a ") + std::string(type));
        return false;
    }
    if (triple->size() != 3) {
        log.at_node(key_path, range_node, form + std::to_string(triple->size()) + " values");
        return false;
    }
    std::string reason;
    const auto first = read_number(*triple->get(0), RealRange{}, reason);
    if (!first) log.at_node(key_path, *triple->get(0), std::string(kind) + " a: " + reason);
    const auto last = read_number(*triple->get(1), RealRange{}, reason);
    if (!last) log.at_node(key_path, *triple->get(1), std::string(kind) + " b: " + reason);
    const auto count = read_integer(*triple->get(2), IntegerRange{1, max_range_count}, reason);
    if (!count) log.at_node(key_path, *triple->get(2), std::string(kind) + " n: " + reason);
    if (!first || !last || !count) return false;

    const bool logarithmic = kind == "logspace";
    axis.log_spaced = logarithmic;
    // NumPy's values bit for bit, so a coordinate computed in Python selects exactly.
    const std::vector<double> generated =
        logarithmic ? numpy_logspace(*first, *last, *count) : numpy_linspace(*first, *last, *count);
    for (std::size_t index = 0; index < generated.size(); ++index) {
        double value = generated[index];
        const std::string violation = generated_value_violation(value, rule);
        if (!violation.empty()) {
            log.at_node(key_path, table,
                        violation + " (" + std::string(kind) + " value " + std::to_string(index + 1) + " of " +
                            std::to_string(*count) + ")");
            return false;
        }
        axis.values.push_back(value);
    }
    return true;
}

// Lists of three or more positive values with a constant ratio plot on a log axis.
bool is_geometric(const std::vector<double>& values) {
    if (values.size() < 3) return false;
    for (double value : values)
        if (!(value > 0.0)) return false;
    const double ratio = values[1] / values[0];
    if (ratio == 1.0) return false;
    for (std::size_t i = 1; i + 1 < values.size(); ++i)
        if (std::abs(values[i + 1] / values[i] - ratio) > 1e-6 * std::abs(ratio)) return false;
    return true;
}

} // namespace

const std::vector<AxisRule>& axis_rules() {
    static const std::vector<AxisRule> rules = {
        {"frustration", Axis::Type::real, unit_interval, {}, 0.0, true},
        {"head_dim", Axis::Type::integer, {}, IntegerRange{0, int_max}, 0.0, true},
        {"lr", Axis::Type::real, positive_reals, {}, 0.1, true},
        {"stop_gradient", Axis::Type::boolean, {}, {}, 0.0, false},
        {"init_scale", Axis::Type::real, positive_reals, {}, 1.0, false},
    };
    return rules;
}

const AxisRule* find_axis_rule(std::string_view name) {
    for (const AxisRule& rule : axis_rules())
        if (rule.name == name) return &rule;
    return nullptr;
}

std::optional<Axis> read_axis(const toml::node& node, const AxisRule& rule, const std::string& key_path,
                              ErrorLog& log) {
    Axis axis;
    axis.name = std::string(rule.name);
    axis.type = rule.type;
    // The node of each value, for the line of a duplicate; ranges point at the table.
    std::vector<const toml::node*> value_nodes;
    bool ok = true;

    if (const auto* list = node.as_array()) {
        if (list->empty()) {
            log.at_node(key_path, node, "empty list: an axis needs at least one value");
            return std::nullopt;
        }
        for (std::size_t index = 0; index < list->size(); ++index) {
            const toml::node& element = *list->get(index);
            std::string reason;
            const auto value = read_axis_value(element, rule, reason);
            if (!value) {
                log.at_node(key_path, element, reason + " (list element " + std::to_string(index + 1) + ")");
                ok = false;
                continue;
            }
            axis.values.push_back(*value);
            value_nodes.push_back(&element);
        }
        if (ok && rule.type != Axis::Type::boolean) axis.log_spaced = is_geometric(axis.values);
    } else if (const auto* table = node.as_table()) {
        ok = read_range(*table, rule, key_path, log, axis);
        value_nodes.assign(axis.values.size(), &node);
    } else {
        std::string reason;
        const auto value = read_axis_value(node, rule, reason);
        if (!value) {
            // A wrong type here may mean the user did not know the axis forms.
            if (reason.rfind("expected", 0) == 0) reason += " (" + axis_forms(rule.type) + ")";
            log.at_node(key_path, node, reason);
            return std::nullopt;
        }
        axis.values.push_back(*value);
        value_nodes.push_back(&node);
    }
    if (!ok) return std::nullopt;

    // Sorted order finds duplicates in n log n; a range may hold a million values.
    std::vector<std::size_t> order(axis.values.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return axis.values[a] < axis.values[b]; });
    for (std::size_t k = 1; k < order.size(); ++k) {
        const std::size_t first = order[k - 1], second = order[k];
        if (axis.values[first] != axis.values[second]) continue;
        const double duplicate = axis.values[second];
        const std::string shown = rule.type == Axis::Type::boolean ? (duplicate != 0.0 ? "true" : "false")
                                                                   : format_number(duplicate);
        log.at_node(key_path, *value_nodes[second],
                    "duplicate value " + shown + " (values " + std::to_string(first + 1) + " and " +
                        std::to_string(second + 1) + "); each grid point must be distinct");
        return std::nullopt;
    }
    return axis;
}

} // namespace collapse::spec_detail
