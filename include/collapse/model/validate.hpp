// Parameter checks shared by the sweep parser and direct API users. Each
// throws std::invalid_argument naming the parameter, the value and the rule.
#pragma once

#include "collapse/config.hpp"

namespace collapse {

// The gradient code keeps per-sample residuals of length d on the stack.
inline constexpr int max_supported_dim = 128;

void validate_shape(const ModelShape& shape);
void validate_trajectory(const TrajectoryParams& params);
void validate_integrator(const IntegratorConfig& integrator);

} // namespace collapse
