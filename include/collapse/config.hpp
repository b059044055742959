// Sweep configuration types shared by the parser, the scheduler, the backends
// and the HDF5 writer. Plain data only: validation lives in sweep/spec_parser.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace collapse {

enum class ModelKind { embedding, teacher_student };
enum class IntegratorMethod { gd, rk4 };
enum class Precision { float32, float64 };
enum class CollapseMetric { label, projected };

// Keys that fix array shapes; they may not be grid axes (SPEC §4).
struct ModelShape {
    ModelKind kind = ModelKind::embedding;
    int classes = 4;            // K
    int samples_per_class = 50; // n; N = K * n
    int dim = 8;                // d
    int input_dim = 0;          // p, teacher_student only

    int samples() const { return classes * samples_per_class; }
};

// Scalar parameters of one trajectory. Every field except seed_index may be a
// grid axis; seed_index always is (the last one).
struct TrajectoryParams {
    double frustration = 0.0; // f in [0, 1]
    int head_dim = 0;         // h >= 0; 0 means no head
    double lr = 0.1;          // > 0; dt for rk4
    bool stop_gradient = false;
    double init_scale = 1.0;  // s > 0
    std::int64_t seed_index = 0;
};

struct IntegratorConfig {
    IntegratorMethod method = IntegratorMethod::gd;
    std::int64_t max_steps = 20000;
    Precision precision = Precision::float64;
};

struct CollapseConfig {
    CollapseMetric metric = CollapseMetric::label;
    double threshold = 0.05;
    bool stop_on_collapse = true;
};

struct OutputConfig {
    int record_points = 128;
    // > 0: record every record_every steps (0, K, 2K, ..., and max_steps)
    // instead of record_points log-spaced steps; what `replay --every K` uses.
    std::int64_t record_every = 0;
    bool save_samples = false;
    bool save_initial = false;
    int compression = 4; // deflate level 0..9
};

// One grid axis. Values are stored as double whatever the key's type; the
// writer casts back (int for head_dim, int8 for bool keys).
struct Axis {
    enum class Type { real, integer, boolean };
    std::string name; // the TOML key: "frustration", "head_dim", "lr", "stop_gradient", "init_scale"
    Type type = Type::real;
    std::vector<double> values;
    bool log_spaced = false; // came from {logspace=...}: plots use a log axis
};

struct SweepSpec {
    ModelShape shape;
    TrajectoryParams defaults; // values of keys that are not axes
    IntegratorConfig integrator;
    CollapseConfig collapse;
    OutputConfig output;
    std::vector<Axis> axes; // spec order; the seed axis is implicit and last
    std::int64_t seeds = 1;
    std::uint64_t master_seed = 0;
    std::string source_path; // for error messages and provenance
    std::string source_text; // the TOML text exactly as read from the file
    std::vector<std::string> overrides; // the --set key=value strings, in order, already applied

    int max_head_dim() const;
};

} // namespace collapse
