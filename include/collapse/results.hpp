// What a backend hands back for one batch of trajectories, and what the HDF5
// writer stores. All floating values are double here whatever the run
// precision; the writer chooses the file type.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

namespace collapse {

enum class TrajectoryStatus : std::int8_t { not_run = -1, stable = 0, collapsed = 1, diverged = 2 };

// SPEC §6 /results/* for one trajectory. Missing values are NaN (floating) or
// -1 (steps): collapse_step/collapse_time exist only when status == collapsed.
struct TrajectorySummary {
    TrajectoryStatus status = TrajectoryStatus::not_run;
    std::int64_t collapse_step = -1;
    double collapse_time = std::numeric_limits<double>::quiet_NaN();
    std::int64_t final_step = -1;
    double peak_accuracy = 0.0;
    std::int64_t peak_accuracy_step = -1;
    double final_accuracy = 0.0;
    double final_loss = 0.0;
    double final_label_distance = 0.0;
    double final_projected_distance = 0.0;
    double slow_rate = std::numeric_limits<double>::quiet_NaN(); // set on the host after the run (theory/diagnostics.hpp)
    std::int64_t slow_rate_first_step = -1; // the fit window's first and last record steps, -1 without a window
    std::int64_t slow_rate_last_step = -1;
    double initial_label_distance = 0.0;
    double reference_distance = 0.0;
};

// Theory diagnostics of one trajectory (docs/model.md, "Theory diagnostics"),
// computed on the host after the run; NaN where a diagnostic does not apply.
struct TheoryDiagnostics {
    double theory_slow_rate = std::numeric_limits<double>::quiet_NaN();
    double theory_window_rate = std::numeric_limits<double>::quiet_NaN(); // slow_rate's fit on the exact trace, same window
    double critical_lr = std::numeric_limits<double>::quiet_NaN();
    double selfconsistency_residual = std::numeric_limits<double>::quiet_NaN();
};

// The results of `size()` trajectories, identified by their flat grid index
// (row-major over the axes in spec order, seed last). Per-trajectory arrays
// are stored back to back: trajectory b's trace starts at b * trace_length.
struct BatchOutput {
    std::vector<std::int64_t> flat_index;
    std::vector<TrajectorySummary> summary;
    std::vector<TheoryDiagnostics> theory; // [b], or empty (not computed: written as NaN)

    int trace_length = 0; // T, the number of record points
    std::vector<double> label_distance_trace;     // [b][T], NaN after the stopping step
    std::vector<double> projected_distance_trace; // [b][T]
    std::vector<double> accuracy_trace;           // [b][T]
    std::vector<double> loss_trace;               // [b][T]
    std::vector<double> theory_label_distance_trace; // [b][T], the exact plain-model solution; NaN where none, or empty

    std::vector<double> final_label_embeddings;  // [b][K][d]
    std::vector<double> final_head;              // [b][d][d], W = B A (zeros when h = 0)
    std::vector<double> final_sample_embeddings; // [b][N][d], only with output.save_samples
    std::vector<double> initial_head_A;          // [b][h_max][d], only with save_initial, zero-padded
    std::vector<double> initial_head_B;          // [b][d][h_max], only with save_initial, zero-padded

    std::size_t size() const { return flat_index.size(); }
};

// Per-seed data shared by every grid point with that seed index (SPEC §6
// /initial and /graph), written once per seed when output.save_initial is set.
struct SeedData {
    std::int64_t seed_index = 0;
    std::vector<double> initial_label_embeddings;  // [K][d]
    std::vector<double> initial_sample_embeddings; // [N][d], embedding kind
    std::vector<double> encoder;                   // [d][p], teacher_student
    std::vector<double> inputs;                    // [N][p], teacher_student
    std::vector<double> teacher;                   // [K][p], teacher_student
    std::vector<std::int32_t> primary_label;       // [N]
    std::vector<std::int32_t> second_label;        // [N]
    std::vector<std::int32_t> frustration_order;   // [N], the permutation pi
};

} // namespace collapse
