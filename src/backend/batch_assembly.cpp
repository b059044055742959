#include "collapse/backend/batch_assembly.hpp"

#include <limits>

#include "collapse/model/small_matrix.hpp"
#include "collapse/record_steps.hpp"

namespace collapse {

RunSettings run_settings(const SweepSpec& spec, const TrajectoryParams& params, double reference_distance) {
    RunSettings settings;
    settings.lr = params.lr;
    settings.max_steps = spec.integrator.max_steps;
    settings.collapse_on_projected = spec.collapse.metric == CollapseMetric::projected;
    settings.collapse_threshold = spec.collapse.threshold;
    settings.stop_on_collapse = spec.collapse.stop_on_collapse;
    settings.reference_distance = reference_distance;
    return settings;
}

void prepare_batch_output(const SweepSpec& spec, std::span<const std::int64_t> flat_indices, BatchOutput& out) {
    const std::size_t count = flat_indices.size();
    const auto d = static_cast<std::size_t>(spec.shape.dim);
    const auto classes = static_cast<std::size_t>(spec.shape.classes);
    const auto samples = static_cast<std::size_t>(spec.shape.samples());
    const auto max_head = static_cast<std::size_t>(spec.max_head_dim());
    const double nan = std::numeric_limits<double>::quiet_NaN();

    out.flat_index.assign(flat_indices.begin(), flat_indices.end());
    out.summary.assign(count, TrajectorySummary{});
    out.theory.assign(count, TheoryDiagnostics{});
    out.trace_length = static_cast<int>(record_steps(spec).size());
    const std::size_t trace_size = count * static_cast<std::size_t>(out.trace_length);
    for (auto* trace : {&out.label_distance_trace, &out.projected_distance_trace, &out.accuracy_trace, &out.loss_trace,
                        &out.theory_label_distance_trace})
        trace->assign(trace_size, nan);
    out.final_label_embeddings.assign(count * classes * d, 0.0);
    out.final_head.assign(count * d * d, 0.0);
    out.final_sample_embeddings.assign(spec.output.save_samples ? count * samples * d : 0, 0.0);
    out.initial_head_A.assign(spec.output.save_initial ? count * max_head * d : 0, 0.0);
    out.initial_head_B.assign(spec.output.save_initial ? count * d * max_head : 0, 0.0);
}

template <class Real>
void store_final_geometry(const SweepSpec& spec, const TrajectoryDims& dims, const Real* state, const Real* inputs,
                          std::size_t slot, BatchOutput& out) {
    const StateLayout layout(dims);
    const int d = dims.dim;
    const auto label_size = static_cast<std::size_t>(dims.classes) * d;
    for (std::size_t e = 0; e < label_size; ++e)
        out.final_label_embeddings[slot * label_size + e] = static_cast<double>(state[layout.labels + e]);
    if (dims.head_dim > 0) {
        double* head = out.final_head.data() + slot * static_cast<std::size_t>(d) * d;
        for (int r = 0; r < d; ++r)
            for (int c = 0; c < d; ++c) {
                double sum = 0;
                for (int k = 0; k < dims.head_dim; ++k)
                    sum += static_cast<double>(state[layout.head_B + static_cast<std::size_t>(r) * dims.head_dim + k]) *
                           static_cast<double>(state[layout.head_A + static_cast<std::size_t>(k) * d + c]);
                head[r * d + c] = sum;
            }
    }
    if (!spec.output.save_samples) return;
    const auto sample_size = static_cast<std::size_t>(dims.samples) * d;
    double* samples = out.final_sample_embeddings.data() + slot * sample_size;
    for (int i = 0; i < dims.samples; ++i)
        for (int c = 0; c < d; ++c) {
            const std::size_t e = static_cast<std::size_t>(i) * d + c;
            if (!dims.teacher_student()) {
                samples[e] = static_cast<double>(state[e]);
                continue;
            }
            double sum = 0;
            for (int j = 0; j < dims.input_dim; ++j)
                sum += static_cast<double>(state[static_cast<std::size_t>(c) * dims.input_dim + j]) *
                       static_cast<double>(inputs[static_cast<std::size_t>(i) * dims.input_dim + j]);
            samples[e] = sum;
        }
}

template <class Real>
void store_initial_head(const SweepSpec& spec, const TrajectoryDims& dims, const Real* initial_state, std::size_t slot,
                        BatchOutput& out) {
    if (!spec.output.save_initial) return;
    const StateLayout layout(dims);
    const auto d = static_cast<std::size_t>(dims.dim);
    const auto max_head = static_cast<std::size_t>(spec.max_head_dim());
    const auto head = static_cast<std::size_t>(dims.head_dim);
    double* head_A = out.initial_head_A.data() + slot * max_head * d;
    double* head_B = out.initial_head_B.data() + slot * d * max_head;
    for (std::size_t r = 0; r < head; ++r)
        for (std::size_t c = 0; c < d; ++c) {
            head_A[r * d + c] = static_cast<double>(initial_state[layout.head_A + r * d + c]);
            head_B[c * max_head + r] = static_cast<double>(initial_state[layout.head_B + c * head + r]);
        }
}

template void store_final_geometry<float>(const SweepSpec&, const TrajectoryDims&, const float*, const float*, std::size_t,
                                          BatchOutput&);
template void store_final_geometry<double>(const SweepSpec&, const TrajectoryDims&, const double*, const double*,
                                           std::size_t, BatchOutput&);
template void store_initial_head<float>(const SweepSpec&, const TrajectoryDims&, const float*, std::size_t, BatchOutput&);
template void store_initial_head<double>(const SweepSpec&, const TrajectoryDims&, const double*, std::size_t,
                                         BatchOutput&);

} // namespace collapse
