// Hand-made sweeps and batches for the storage tests: every stored number is
// a deterministic function of (flat index, field, element), exactly
// representable in float32, so any value read back can be checked exactly.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "collapse/config.hpp"
#include "collapse/results.hpp"
#include "collapse/storage/result_reader.hpp"
#include "collapse/storage/result_writer.hpp"
#include "collapse/sweep/grid.hpp"
#include "spec_builder.hpp"

namespace collapse::storage::testing {

using collapse::testing::boolean_axis;
using collapse::testing::integer_axis;
using collapse::testing::real_axis;

struct SpecOptions {
    std::vector<Axis> axes;
    std::int64_t seeds = 2;
    ModelKind kind = ModelKind::embedding;
    Precision precision = Precision::float64;
    bool save_samples = true;
    bool save_initial = true;
    int record_points = 16;
    std::vector<std::string> overrides;
};

// A small spec: K = 3, n = 4, d = 4 (p = 5 for teacher_student).
SweepSpec make_spec(const SpecOptions& options);
// frustration x head_dim, the default for unit tests.
SpecOptions two_axis_options();

TrajectorySummary expected_summary(std::int64_t flat_index);
double expected_value(std::int64_t flat_index, int field, std::int64_t element);

// The batch a backend would produce for these flat indices (any order).
BatchOutput make_batch(const SweepSpec& spec, const std::vector<std::int64_t>& flat_indices);
SeedData make_seed_data(const SweepSpec& spec, std::int64_t seed_index);

Provenance test_provenance();

// Writes `indices` in batches of `batch_size` (in the given order).
void write_in_batches(ResultWriter& writer, const SweepSpec& spec, const std::vector<std::int64_t>& indices,
                      std::size_t batch_size);

// A permutation of [0, size) from a fixed seed.
std::vector<std::int64_t> shuffled_indices(std::int64_t size, unsigned seed);

// Every gridded and per-seed dataset path the spec's files hold.
std::vector<std::string> dataset_paths(const SweepSpec& spec);

// Exact (NaN-equal) comparison of every dataset of two files; "" if equal,
// else a description of the first difference.
std::string compare_files(const ResultReader& a, const ResultReader& b, const std::vector<std::string>& paths);

// Checks that every trajectory with status >= 0 holds exactly what
// make_batch wrote; "" if so, else the first difference.
std::string check_finished_trajectories(const ResultReader& reader, const SweepSpec& spec);

bool same_value(double a, double b); // NaN equals NaN

std::string temporary_directory(const std::string& name); // fresh, empty, under process_folder()
std::string process_folder(); // this process's scratch folder under the system temp dir

} // namespace collapse::storage::testing
