// SweepSpecs for the C++ tests (core, backend, scheduler, storage): grid
// axes by name, and a spec from the settings a test chooses, by designated
// initializers; every setting it does not name keeps SweepSpec's default.
//
//   const SweepSpec spec = test_spec({.classes = 3, .samples_per_class = 6, .dim = 4, .max_steps = 300,
//                                     .axes = {frustration_axis({0.0, 0.5}), head_dim_axis({0, 3}), lr_axis({0.1})}});
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "collapse/config.hpp"

namespace collapse::testing {

inline Axis real_axis(std::string name, std::vector<double> values, bool log_spaced = false) {
    return Axis{std::move(name), Axis::Type::real, std::move(values), log_spaced};
}

inline Axis integer_axis(std::string name, std::vector<double> values) {
    return Axis{std::move(name), Axis::Type::integer, std::move(values), false};
}

inline Axis boolean_axis(std::string name) { return Axis{std::move(name), Axis::Type::boolean, {0.0, 1.0}, false}; }

inline Axis frustration_axis(std::vector<double> values) { return real_axis("frustration", std::move(values)); }
inline Axis head_dim_axis(std::vector<double> values) { return integer_axis("head_dim", std::move(values)); }
inline Axis lr_axis(std::vector<double> values) { return real_axis("lr", std::move(values)); }
inline Axis stop_gradient_axis() { return boolean_axis("stop_gradient"); }

// The settings of test_spec, in the order designated initializers name them.
struct TestSpec {
    int classes = ModelShape{}.classes;
    int samples_per_class = ModelShape{}.samples_per_class;
    int dim = ModelShape{}.dim;
    IntegratorMethod method = IntegratorConfig{}.method;
    std::int64_t max_steps = IntegratorConfig{}.max_steps;
    Precision precision = IntegratorConfig{}.precision;
    bool stop_on_collapse = CollapseConfig{}.stop_on_collapse;
    int record_points = OutputConfig{}.record_points;
    bool save_samples = OutputConfig{}.save_samples;
    bool save_initial = OutputConfig{}.save_initial;
    std::uint64_t master_seed = SweepSpec{}.master_seed;
    std::int64_t seeds = SweepSpec{}.seeds;
    std::vector<Axis> axes = {}; // in grid order
};

inline SweepSpec test_spec(TestSpec settings) {
    SweepSpec spec;
    spec.shape.classes = settings.classes;
    spec.shape.samples_per_class = settings.samples_per_class;
    spec.shape.dim = settings.dim;
    spec.integrator.method = settings.method;
    spec.integrator.max_steps = settings.max_steps;
    spec.integrator.precision = settings.precision;
    spec.collapse.stop_on_collapse = settings.stop_on_collapse;
    spec.output.record_points = settings.record_points;
    spec.output.save_samples = settings.save_samples;
    spec.output.save_initial = settings.save_initial;
    spec.master_seed = settings.master_seed;
    spec.seeds = settings.seeds;
    spec.axes = std::move(settings.axes);
    return spec;
}

// The smallest valid spec: K = 2, n = 1, d = 1, one step, two record points,
// `seeds` seeds; one value per axis unless `axes` says otherwise.
inline SweepSpec tiny_spec(std::int64_t seeds,
                           std::vector<Axis> axes = {frustration_axis({0.0}), head_dim_axis({0}), lr_axis({0.1})}) {
    return test_spec({.classes = 2, .samples_per_class = 1, .dim = 1, .max_steps = 1, .record_points = 2,
                      .seeds = seeds, .axes = std::move(axes)});
}

} // namespace collapse::testing
