// The host-side description of device-made initial states
// (initial_state_generation.hpp): where each stream lies in a seed slot's
// block of normals, and each trajectory's offsets and scales. Thrust-free, so
// batch_packing.hpp can hold these.
#pragma once

#include <cmath>
#include <cstdint>

#include "collapse/config.hpp"
#include "collapse/model/layout.hpp"
#include "collapse/model/philox.hpp"

namespace collapse::cuda {

// Where each stream lies in one seed slot's block of the normals buffer.
struct SeedNormalsLayout {
    std::uint64_t lead = 0, labels = 0, head_A = 0, head_B = 0, size = 0;
    philox::Stream lead_stream = philox::Stream::sample_embeddings;
};

inline SeedNormalsLayout seed_normals_layout(const ModelShape& shape, int max_head_dim) {
    const auto dim = static_cast<std::uint64_t>(shape.dim);
    const bool teacher_student = shape.kind == ModelKind::teacher_student;
    SeedNormalsLayout layout;
    layout.lead_stream = teacher_student ? philox::Stream::encoder : philox::Stream::sample_embeddings;
    layout.labels = dim * static_cast<std::uint64_t>(teacher_student ? shape.input_dim : shape.samples());
    layout.head_A = layout.labels + dim * static_cast<std::uint64_t>(shape.classes);
    layout.head_B = layout.head_A + dim * static_cast<std::uint64_t>(max_head_dim);
    layout.size = layout.head_B + dim * static_cast<std::uint64_t>(max_head_dim);
    return layout;
}

// One trajectory's part of pass 2.
struct InitialStateTask {
    TrajectoryDims dims;
    std::uint64_t state_offset = 0; // into the state pool
    std::uint64_t slot = 0;         // seed slot in the normals buffer
    double lead_scale = 0, label_scale = 0, head_A_scale = 0, head_B_scale = 0;
};

// The scales of make_trajectory, computed the same way on the host.
inline InitialStateTask initial_state_task(const ModelShape& shape, const TrajectoryParams& params,
                                           std::uint64_t state_offset, std::uint64_t slot) {
    const bool teacher_student = shape.kind == ModelKind::teacher_student;
    InitialStateTask task;
    task.dims = TrajectoryDims{shape.classes, shape.samples(), shape.dim, params.head_dim,
                               teacher_student ? shape.input_dim : 0};
    task.state_offset = state_offset;
    task.slot = slot;
    const double scale = params.init_scale;
    task.lead_scale = teacher_student ? scale / std::sqrt(static_cast<double>(shape.input_dim)) : scale;
    task.label_scale = scale;
    task.head_A_scale = 1.0 / std::sqrt(static_cast<double>(shape.dim));
    task.head_B_scale = params.head_dim > 0 ? 1.0 / std::sqrt(static_cast<double>(params.head_dim)) : 0.0;
    return task;
}

} // namespace collapse::cuda
