// The CUDA backend's COLLAPSE_CUDA_* switches (docs/cli.md), read the same
// way: unset or empty means the first value (the default), a listed value
// its index, anything else a BackendError that names the variable and what
// it may be.
#pragma once

#include <cstdlib>
#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>

#include "collapse/backend/backend.hpp"

namespace collapse::cuda {

inline std::size_t environment_choice(const char* variable, std::initializer_list<std::string_view> values) {
    const char* set = std::getenv(variable);
    if (set == nullptr || *set == '\0') return 0;
    std::size_t index = 0;
    std::string allowed;
    for (std::string_view value : values) {
        if (value == set) return index;
        allowed += (index == 0 ? "" : index + 1 == values.size() ? " or " : ", ") + std::string(value);
        ++index;
    }
    throw BackendError(std::string(variable) + " must be " + allowed + ", not '" + set + "'");
}

} // namespace collapse::cuda
