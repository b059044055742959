#include "synthetic.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <numeric>
#include <random>
#include <unistd.h>

#include "collapse/record_steps.hpp"

namespace collapse::storage::testing {

namespace {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

struct FieldOf {
    const char* path;
    int field;
};

// Gridded datasets other than /results and the field number their values use.
constexpr FieldOf gridded_fields[] = {
    {"/traces/label_distance", 1}, {"/traces/projected_distance", 2}, {"/traces/accuracy", 3},
    {"/traces/loss", 4},           {"/final/label_embeddings", 5},    {"/final/head", 6},
    {"/final/sample_embeddings", 7}, {"/initial/head_A", 8},          {"/initial/head_B", 9}};

const char* result_names[] = {"status",           "collapse_step",        "collapse_time",
                              "final_step",       "peak_accuracy",        "peak_accuracy_step",
                              "final_accuracy",   "final_loss",           "final_label_distance",
                              "final_projected_distance", "slow_rate",    "initial_label_distance",
                              "reference_distance"};

double summary_field(const TrajectorySummary& s, const std::string& name) {
    if (name == "status") return static_cast<double>(s.status);
    if (name == "collapse_step") return static_cast<double>(s.collapse_step);
    if (name == "collapse_time") return s.collapse_time;
    if (name == "final_step") return static_cast<double>(s.final_step);
    if (name == "peak_accuracy") return s.peak_accuracy;
    if (name == "peak_accuracy_step") return static_cast<double>(s.peak_accuracy_step);
    if (name == "final_accuracy") return s.final_accuracy;
    if (name == "final_loss") return s.final_loss;
    if (name == "final_label_distance") return s.final_label_distance;
    if (name == "final_projected_distance") return s.final_projected_distance;
    if (name == "slow_rate") return s.slow_rate;
    if (name == "initial_label_distance") return s.initial_label_distance;
    return s.reference_distance;
}

// Traces stop like a trajectory that ended early: NaN after its stopping point.
double expected_trace(std::int64_t flat, int field, std::int64_t step_index, std::int64_t trace_length) {
    if (step_index >= trace_length - flat % 3) return nan;
    return expected_value(flat, field, step_index);
}

std::int64_t per_trajectory(const SweepSpec& spec, const std::string& path) {
    const std::int64_t K = spec.shape.classes, d = spec.shape.dim, N = spec.shape.samples();
    const std::int64_t h = spec.max_head_dim();
    const auto T = static_cast<std::int64_t>(record_steps(spec.integrator.max_steps, spec.output.record_points).size());
    if (path.starts_with("/traces/")) return T;
    if (path == "/final/label_embeddings") return K * d;
    if (path == "/final/head") return d * d;
    if (path == "/final/sample_embeddings") return spec.output.save_samples ? N * d : 0;
    if (path == "/initial/head_A" || path == "/initial/head_B") return spec.output.save_initial ? h * d : 0;
    return 0;
}

} // namespace

SpecOptions two_axis_options() {
    SpecOptions options;
    options.axes = {real_axis("frustration", {0.0, 0.05, 0.1}), integer_axis("head_dim", {0, 2})};
    return options;
}

SweepSpec make_spec(const SpecOptions& options) {
    SweepSpec spec = collapse::testing::test_spec(
        {.classes = 3, .samples_per_class = 4, .dim = 4, .max_steps = 1000, .precision = options.precision,
         .record_points = options.record_points, .save_samples = options.save_samples,
         .save_initial = options.save_initial, .master_seed = 12345, .seeds = options.seeds, .axes = options.axes});
    spec.shape.kind = options.kind;
    spec.shape.input_dim = options.kind == ModelKind::teacher_student ? 5 : 0;
    spec.source_path = "synthetic.toml";
    spec.overrides = options.overrides;
    std::string text = "[model]\nkind = \"";
    text += options.kind == ModelKind::embedding ? "embedding" : "teacher_student";
    text += "\"\nclasses = 3\nsamples_per_class = 4\ndim = 4\n[grid]\nseeds = " + std::to_string(options.seeds) + "\n";
    for (const Axis& axis : options.axes) {
        text += axis.name + " = [";
        for (double value : axis.values) text += std::to_string(value) + ", ";
        text += "]\n";
    }
    text += std::string("[integrator]\nprecision = \"") +
            (options.precision == Precision::float32 ? "float32" : "float64") + "\"\n";
    text += "[output]\nrecord_points = " + std::to_string(options.record_points) + "\nsave_samples = " +
            (options.save_samples ? "true" : "false") + "\nsave_initial = " + (options.save_initial ? "true" : "false") +
            "\n";
    spec.source_text = text;
    return spec;
}

double expected_value(std::int64_t flat_index, int field, std::int64_t element) {
    // Integer part, 4 bits of field and 13 bits of element: exact in float32
    // for flat indices below 2048.
    return static_cast<double>(flat_index) + field / 16.0 + static_cast<double>(element % 512) / 8192.0;
}

TrajectorySummary expected_summary(std::int64_t flat) {
    TrajectorySummary s;
    const auto f = static_cast<double>(flat);
    s.status = static_cast<TrajectoryStatus>(flat % 3);
    s.collapse_step = flat % 3 == 1 ? flat * 7 + 1 : -1;
    s.collapse_time = flat % 3 == 1 ? f * 0.25 : nan;
    s.final_step = flat * 7 + 3;
    s.peak_accuracy = static_cast<double>(flat % 64) / 64.0;
    s.peak_accuracy_step = flat * 2;
    s.final_accuracy = static_cast<double>(flat % 32) / 32.0;
    s.final_loss = f / 1024.0;
    s.final_label_distance = f / 512.0 + 0.5;
    s.final_projected_distance = f / 256.0;
    s.slow_rate = flat % 5 == 0 ? nan : f / 2048.0;
    s.initial_label_distance = 5.0 + f / 128.0;
    s.reference_distance = 1.0 + f / 64.0;
    return s;
}

BatchOutput make_batch(const SweepSpec& spec, const std::vector<std::int64_t>& flat_indices) {
    BatchOutput batch;
    batch.flat_index = flat_indices;
    batch.trace_length = static_cast<int>(per_trajectory(spec, "/traces/loss"));
    for (std::int64_t flat : flat_indices) batch.summary.push_back(expected_summary(flat));
    auto fill = [&](std::vector<double>& target, const char* path, int field) {
        const std::int64_t width = per_trajectory(spec, path);
        for (std::int64_t flat : flat_indices)
            for (std::int64_t e = 0; e < width; ++e)
                target.push_back(std::string(path).starts_with("/traces/")
                                     ? expected_trace(flat, field, e, width)
                                     : expected_value(flat, field, e));
    };
    fill(batch.label_distance_trace, "/traces/label_distance", 1);
    fill(batch.projected_distance_trace, "/traces/projected_distance", 2);
    fill(batch.accuracy_trace, "/traces/accuracy", 3);
    fill(batch.loss_trace, "/traces/loss", 4);
    fill(batch.final_label_embeddings, "/final/label_embeddings", 5);
    fill(batch.final_head, "/final/head", 6);
    fill(batch.final_sample_embeddings, "/final/sample_embeddings", 7);
    fill(batch.initial_head_A, "/initial/head_A", 8);
    fill(batch.initial_head_B, "/initial/head_B", 9);
    return batch;
}

SeedData make_seed_data(const SweepSpec& spec, std::int64_t seed_index) {
    SeedData seed;
    seed.seed_index = seed_index;
    const std::int64_t K = spec.shape.classes, d = spec.shape.dim, N = spec.shape.samples();
    const std::int64_t p = spec.shape.input_dim;
    auto values = [&](int field, std::int64_t count) {
        std::vector<double> out;
        for (std::int64_t e = 0; e < count; ++e) out.push_back(expected_value(seed_index, field, e));
        return out;
    };
    seed.initial_label_embeddings = values(10, K * d);
    if (spec.shape.kind == ModelKind::embedding) {
        seed.initial_sample_embeddings = values(11, N * d);
    } else {
        seed.encoder = values(12, d * p);
        seed.inputs = values(13, N * p);
        seed.teacher = values(14, K * p);
    }
    for (std::int64_t i = 0; i < N; ++i) {
        seed.primary_label.push_back(static_cast<std::int32_t>(i % K));
        seed.second_label.push_back(static_cast<std::int32_t>((i + 1 + seed_index) % K));
        seed.frustration_order.push_back(static_cast<std::int32_t>((i + seed_index) % N));
    }
    return seed;
}

Provenance test_provenance() { return {"storage_tests --synthetic", "test", "no device"}; }

void write_in_batches(ResultWriter& writer, const SweepSpec& spec, const std::vector<std::int64_t>& indices,
                      std::size_t batch_size) {
    for (std::size_t start = 0; start < indices.size(); start += batch_size) {
        const std::size_t stop = std::min(indices.size(), start + batch_size);
        writer.write_batch(make_batch(spec, {indices.begin() + static_cast<std::ptrdiff_t>(start),
                                             indices.begin() + static_cast<std::ptrdiff_t>(stop)}));
    }
}

std::vector<std::int64_t> shuffled_indices(std::int64_t size, unsigned seed) {
    std::vector<std::int64_t> indices(static_cast<std::size_t>(size));
    std::iota(indices.begin(), indices.end(), std::int64_t{0});
    std::mt19937 generator(seed);
    std::shuffle(indices.begin(), indices.end(), generator);
    return indices;
}

std::vector<std::string> dataset_paths(const SweepSpec&) {
    std::vector<std::string> paths;
    for (const char* name : result_names) paths.push_back(std::string("/results/") + name);
    for (const FieldOf& field : gridded_fields) paths.emplace_back(field.path);
    for (const char* path : {"/traces/step", "/initial/label_embeddings", "/initial/sample_embeddings",
                             "/initial/encoder", "/initial/inputs", "/initial/teacher", "/graph/primary_label",
                             "/graph/second_label", "/graph/frustration_order"})
        paths.emplace_back(path);
    return paths;
}

bool same_value(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

std::string compare_files(const ResultReader& a, const ResultReader& b, const std::vector<std::string>& paths) {
    for (const std::string& path : paths) {
        if (a.has_dataset(path) != b.has_dataset(path)) return path + " exists in only one file";
        if (!a.has_dataset(path)) continue;
        if (a.dataset_shape(path) != b.dataset_shape(path)) return path + " shapes differ";
        const std::vector<double> x = a.read_doubles(path), y = b.read_doubles(path);
        for (std::size_t i = 0; i < x.size(); ++i)
            if (!same_value(x[i], y[i]))
                return path + "[" + std::to_string(i) + "]: " + std::to_string(x[i]) + " vs " + std::to_string(y[i]);
    }
    return "";
}

std::string check_finished_trajectories(const ResultReader& reader, const SweepSpec& spec) {
    const std::vector<std::int8_t> status = reader.status();
    std::vector<std::pair<std::string, std::vector<double>>> results;
    for (const char* name : result_names) results.emplace_back(name, reader.result(name));
    for (std::size_t flat = 0; flat < status.size(); ++flat) {
        if (status[flat] < 0) continue;
        const TrajectorySummary expected = expected_summary(static_cast<std::int64_t>(flat));
        for (const auto& [name, values] : results)
            if (!same_value(values[flat], summary_field(expected, name)))
                return "/results/" + name + " of trajectory " + std::to_string(flat);
    }
    for (const FieldOf& field : gridded_fields) {
        if (!reader.has_dataset(field.path)) continue;
        const std::vector<double> values = reader.read_doubles(field.path);
        const auto width = static_cast<std::size_t>(per_trajectory(spec, field.path));
        const bool trace = std::string(field.path).starts_with("/traces/");
        for (std::size_t flat = 0; flat < status.size(); ++flat) {
            if (status[flat] < 0) continue;
            for (std::size_t e = 0; e < width; ++e) {
                const auto f = static_cast<std::int64_t>(flat), element = static_cast<std::int64_t>(e);
                const double want = trace ? expected_trace(f, field.field, element, static_cast<std::int64_t>(width))
                                          : expected_value(f, field.field, element);
                if (!same_value(values[flat * width + e], want))
                    return std::string(field.path) + " of trajectory " + std::to_string(flat) + " element " +
                           std::to_string(e);
            }
        }
    }
    return "";
}

std::string process_folder() {
    return (std::filesystem::temp_directory_path() / ("collapse-storage-" + std::to_string(::getpid()))).string();
}

std::string temporary_directory(const std::string& name) {
    const std::filesystem::path directory = std::filesystem::path(process_folder()) / name;
    std::filesystem::remove_all(directory);
    std::filesystem::create_directories(directory);
    return directory.string();
}

} // namespace collapse::storage::testing
