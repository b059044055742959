// Helpers shared by the sweep-parser tests.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "collapse/sweep/spec_parser.hpp"

namespace collapse::test {

inline constexpr const char* spec_name = "sweeps/x.toml";

// The message of the SpecError that parsing `text` throws, or "" after a
// test failure when it parses.
inline std::string spec_error(std::string_view text, const std::vector<std::string>& overrides = {}) {
    try {
        parse_sweep_spec_text(text, spec_name, overrides);
    } catch (const SpecError& error) {
        return error.what();
    }
    ADD_FAILURE() << "expected a SpecError for:\n" << text;
    return {};
}

inline SweepSpec parse(std::string_view text, const std::vector<std::string>& overrides = {}) {
    return parse_sweep_spec_text(text, spec_name, overrides);
}

inline std::vector<std::string> axis_names(const SweepSpec& spec) {
    std::vector<std::string> names;
    for (const Axis& axis : spec.axes) names.push_back(axis.name);
    return names;
}

// A copy, so that axis_named(parse(...), name) does not dangle.
inline Axis axis_named(const SweepSpec& spec, std::string_view name) {
    for (const Axis& axis : spec.axes)
        if (axis.name == name) return axis;
    throw std::runtime_error("no axis " + std::string(name));
}

} // namespace collapse::test
