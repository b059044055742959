#include "collapse/model/validate.hpp"

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace collapse {
namespace {

template <class Value>
[[noreturn]] void reject(const char* name, Value value, const char* rule) {
    std::ostringstream message;
    message << name << " = " << value << ": " << rule;
    throw std::invalid_argument(message.str());
}

} // namespace

void validate_shape(const ModelShape& shape) {
    if (shape.classes < 2) reject("classes (K)", shape.classes, "must be at least 2");
    if (shape.samples_per_class < 1) reject("samples_per_class (n)", shape.samples_per_class, "must be at least 1");
    if (shape.dim < 1) reject("dim (d)", shape.dim, "must be at least 1");
    if (shape.dim > max_supported_dim) reject("dim (d)", shape.dim, "must be at most 128");
    if (shape.kind == ModelKind::teacher_student && shape.input_dim < 1)
        reject("input_dim (p)", shape.input_dim, "must be at least 1 for teacher_student");
}

void validate_trajectory(const TrajectoryParams& params) {
    if (!(params.frustration >= 0.0 && params.frustration <= 1.0))
        reject("frustration (f)", params.frustration, "must lie in [0, 1]");
    if (params.head_dim < 0) reject("head_dim (h)", params.head_dim, "must be at least 0");
    if (!(params.lr > 0.0) || !std::isfinite(params.lr)) reject("lr", params.lr, "must be a finite number > 0");
    if (!(params.init_scale > 0.0) || !std::isfinite(params.init_scale))
        reject("init_scale", params.init_scale, "must be a finite number > 0");
    if (params.seed_index < 0) reject("seed index", params.seed_index, "must be at least 0");
}

void validate_integrator(const IntegratorConfig& integrator) {
    if (integrator.max_steps < 1) reject("max_steps", integrator.max_steps, "must be at least 1");
}

} // namespace collapse
