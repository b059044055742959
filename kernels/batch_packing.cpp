#include "batch_packing.hpp"

#include <algorithm>
#include <map>

#include "collapse/backend/batch_assembly.hpp"
#include "collapse/backend/parallel_errors.hpp"
#include "collapse/integrators/gradient_descent.hpp"
#include "collapse/integrators/runge_kutta4.hpp"
#include "collapse/model/setup.hpp"
#include "collapse/model/validate.hpp"
#include "collapse/record_steps.hpp"

namespace collapse::cuda {
namespace {

TrajectoryDims dims_of(const ModelShape& shape, int head_dim) {
    const bool teacher_student = shape.kind == ModelKind::teacher_student;
    return TrajectoryDims{shape.classes, shape.samples(), shape.dim, head_dim, teacher_student ? shape.input_dim : 0};
}

int scratch_vectors(IntegratorMethod method) {
    return method == IntegratorMethod::rk4 ? RungeKutta4::scratch_vectors : GradientDescent::scratch_vectors;
}

// Runs body(e) for e in [0, count) on all cores; the first exception thrown
// inside is rethrown here (exceptions cannot leave an OpenMP region).
template <class Body>
void parallel_for(std::int64_t count, Body&& body) {
    FirstError error;
#pragma omp parallel for schedule(dynamic, 16)
    for (std::int64_t e = 0; e < count; ++e) {
        try {
            body(e);
        } catch (...) {
            error.capture();
        }
    }
    error.rethrow_if_any();
}

} // namespace

template <class Real>
void pack_batch(const SweepSpec& spec, const Grid& grid, std::span<const std::int64_t> flat_indices,
                HostBatch<Real>& host, BatchOutput& out) {
    validate_shape(spec.shape);
    validate_integrator(spec.integrator);
    std::vector<TrajectoryParams> params;
    params.reserve(flat_indices.size());
    for (std::int64_t flat : flat_indices) {
        params.push_back(grid.params(flat));
        validate_trajectory(params.back());
    }
    prepare_batch_output(spec, flat_indices, out);

    const ModelShape& shape = spec.shape;
    const auto samples = static_cast<std::size_t>(shape.samples());
    const auto classes = static_cast<std::size_t>(shape.classes);
    const auto input_block =
        shape.kind == ModelKind::teacher_student ? samples * static_cast<std::size_t>(shape.input_dim) : 0;
    const auto count = static_cast<std::int64_t>(params.size());
    host.count = count;
    host.record_steps = record_steps(spec);
    host.grid_widest_head = spec.max_head_dim();

    // Seeds in order of first appearance: trajectories of one seed share its
    // primary labels and teacher-student inputs.
    std::map<std::int64_t, std::size_t> seed_slot;
    std::vector<std::int64_t> slot_seed;
    std::vector<std::size_t> slot_of(params.size());
    for (std::size_t b = 0; b < params.size(); ++b) {
        const auto [entry, inserted] = seed_slot.emplace(params[b].seed_index, slot_seed.size());
        if (inserted) slot_seed.push_back(params[b].seed_index);
        slot_of[b] = entry->second;
    }

    host.tasks.resize(params.size());
    PoolSizes sizes;
    const int scratch = scratch_vectors(spec.integrator.method);
    for (std::size_t b = 0; b < params.size(); ++b) {
        const TrajectoryDims dims = dims_of(shape, params[b].head_dim);
        const std::size_t state_size = StateLayout(dims).size;
        TrajectoryTask<Real>& task = host.tasks[b];
        task = TrajectoryTask<Real>{};
        task.dims = dims;
        task.stop_gradient = params[b].stop_gradient;
        task.state_offset = sizes.states;
        task.workspace_offset = sizes.workspaces;
        task.scratch_offset = sizes.scratch;
        task.second_label_offset = sizes.second_labels;
        task.label_degree_offset = sizes.label_degrees;
        task.primary_label_offset = slot_of[b] * samples;
        task.inputs_offset = slot_of[b] * input_block;
        task.team_streamed_offset = sizes.team_streamed;
        task.class_member_offset = sizes.class_members;
        sizes.states += state_size;
        sizes.team_streamed += TeamWorkspaceLayout(dims).streamed_size;
        sizes.class_members += class_member_entries(dims);
        sizes.workspaces += WorkspaceLayout(dims).size;
        sizes.scratch += static_cast<std::size_t>(scratch) * state_size;
        sizes.second_labels += samples;
        sizes.label_degrees += classes;
    }
    sizes.primary_labels = slot_seed.size() * samples;
    sizes.inputs = slot_seed.size() * input_block;
    host.sizes = sizes;
    host.states.resize(sizes.states);
    host.primary_labels.resize(sizes.primary_labels);
    host.second_labels.resize(sizes.second_labels);
    host.label_degrees.resize(sizes.label_degrees);
    host.inputs.resize(sizes.inputs);

    const int max_head = spec.max_head_dim();
    if (host.device_initial_states) {
        host.master_seed = spec.master_seed;
        host.seed_normals = seed_normals_layout(shape, max_head);
        host.slot_seeds = slot_seed;
        host.initial_tasks.resize(params.size());
        host.state_stride = 0;
        for (std::size_t b = 0; b < params.size(); ++b) {
            host.initial_tasks[b] = initial_state_task(shape, params[b], host.tasks[b].state_offset, slot_of[b]);
            host.state_stride = std::max<std::uint64_t>(host.state_stride, StateLayout(host.tasks[b].dims).size);
        }
    }
    std::vector<SeedDraws> draws(slot_seed.size());
    parallel_for(static_cast<std::int64_t>(slot_seed.size()), [&](std::int64_t e) {
        const auto slot = static_cast<std::size_t>(e);
        draws[slot] = draw_seed(shape, max_head, spec.master_seed, slot_seed[slot]);
        std::copy(draws[slot].primary_label.begin(), draws[slot].primary_label.end(),
                  host.primary_labels.data() + slot * samples);
        // The same double -> Real conversion make_trajectory applies.
        for (std::size_t j = 0; j < input_block; ++j)
            host.inputs[slot * input_block + j] = static_cast<Real>(draws[slot].inputs[j]);
    });
    parallel_for(count, [&](std::int64_t e) {
        const auto b = static_cast<std::size_t>(e);
        const TrajectorySetup<Real> setup = make_trajectory<Real>(shape, params[b], draws[slot_of[b]]);
        TrajectoryTask<Real>& task = host.tasks[b];
        task.inverse_pair_count = setup.problem().inverse_pair_count;
        task.settings = run_settings(spec, params[b], setup.reference_distance);
        if (!host.device_initial_states)
            std::copy(setup.initial_state.begin(), setup.initial_state.end(), host.states.data() + task.state_offset);
        std::copy(setup.second_label.begin(), setup.second_label.end(), host.second_labels.data() + task.second_label_offset);
        std::copy(setup.label_degree.begin(), setup.label_degree.end(), host.label_degrees.data() + task.label_degree_offset);
        store_initial_head(spec, setup.dims, setup.initial_state.data(), b, out);
    });
}

template <class Real>
void unpack_final_states(const SweepSpec& spec, const HostBatch<Real>& host, BatchOutput& out) {
    parallel_for(host.count, [&](std::int64_t e) {
        const auto b = static_cast<std::size_t>(e);
        const TrajectoryTask<Real>& task = host.tasks[b];
        const Real* inputs = task.dims.teacher_student() ? host.inputs.data() + task.inputs_offset : nullptr;
        store_final_geometry(spec, task.dims, host.states.data() + task.state_offset, inputs, b, out);
    });
}

namespace {

std::size_t real_size(const SweepSpec& spec) {
    return spec.integrator.precision == Precision::float32 ? sizeof(float) : sizeof(double);
}

} // namespace

std::size_t device_bytes_per_trajectory(const SweepSpec& spec) {
    const TrajectoryDims dims = dims_of(spec.shape, spec.max_head_dim());
    const std::size_t state = StateLayout(dims).size;
    const std::size_t reals = state * static_cast<std::size_t>(2 + scratch_vectors(spec.integrator.method)) +
                              std::max(WorkspaceLayout(dims).size, TeamWorkspaceLayout(dims).streamed_size) +
                              static_cast<std::size_t>(dims.classes) +
                              static_cast<std::size_t>(dims.samples) * static_cast<std::size_t>(dims.input_dim);
    // Device-made initial states: one seed slot of normals per trajectory at most.
    const std::size_t generation = seed_normals_layout(spec.shape, spec.max_head_dim()).size * sizeof(double) +
                                   sizeof(InitialStateTask) + sizeof(std::int64_t);
    // Either kernel's pools (whichever is larger; class_member_entries ints for the team kernel).
    const std::size_t trace_points = record_steps(spec).size();
    return reals * real_size(spec) + (2 * static_cast<std::size_t>(dims.samples) + class_member_entries(dims)) * sizeof(int) +
           4 * trace_points * sizeof(double) + sizeof(TrajectorySummary) + sizeof(TrajectoryTask<double>) + generation;
}

std::size_t host_bytes_per_trajectory(const SweepSpec& spec) {
    const TrajectoryDims dims = dims_of(spec.shape, spec.max_head_dim());
    const std::size_t reals = StateLayout(dims).size + static_cast<std::size_t>(dims.classes) +
                              static_cast<std::size_t>(dims.samples) * static_cast<std::size_t>(dims.input_dim);
    return reals * real_size(spec) + 2 * static_cast<std::size_t>(dims.samples) * sizeof(int) +
           sizeof(TrajectoryTask<double>);
}

template void pack_batch<float>(const SweepSpec&, const Grid&, std::span<const std::int64_t>, HostBatch<float>&,
                                BatchOutput&);
template void pack_batch<double>(const SweepSpec&, const Grid&, std::span<const std::int64_t>, HostBatch<double>&,
                                 BatchOutput&);
template void unpack_final_states<float>(const SweepSpec&, const HostBatch<float>&, BatchOutput&);
template void unpack_final_states<double>(const SweepSpec&, const HostBatch<double>&, BatchOutput&);

} // namespace collapse::cuda
