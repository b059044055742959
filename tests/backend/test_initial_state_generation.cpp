// CUDA builds only, no device needed: the Thrust generator of initial states
// (kernels/initial_state_generation.hpp), run with thrust::host, against the
// host setup (draw_seed + make_trajectory) bit for bit, and pack_batch's
// device-generation bookkeeping against its host-copy path. On the GPU the
// same functors run with thrust::cuda::par, and their arithmetic is
// portable_math.hpp's (unfused, correctly rounded), so this pins down the
// device result too, short of running it.
#include <gtest/gtest.h>

#include <thrust/execution_policy.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "backend_test_support.hpp"
#include "batch_packing.hpp"
#include "collapse/model/setup.hpp"
#include "collapse/sweep/grid.hpp"
#include "initial_state_generation.hpp"

namespace collapse::testing {
namespace {

template <class Real>
bool same_bits(const std::vector<Real>& a, const Real* b) {
    return std::memcmp(a.data(), b, a.size() * sizeof(Real)) == 0;
}

// Trajectories of several seeds, head widths and init scales in one batch,
// generated with thrust::host, each compared with make_trajectory.
template <class Real>
void check_against_make_trajectory(const ModelShape& shape, int max_head_dim) {
    const std::uint64_t master_seed = 0x5eed0001cafeULL;
    const std::vector<std::int64_t> slot_seeds = {4, 0, 1234567};
    struct Point {
        std::size_t slot;
        int head_dim;
        double init_scale;
    };
    std::vector<Point> points;
    for (std::size_t slot = 0; slot < slot_seeds.size(); ++slot)
        for (int head_dim : {0, std::min(1, max_head_dim), max_head_dim})
            for (double init_scale : {1.0, 0.3, 2.5}) points.push_back({slot, head_dim, init_scale});

    std::vector<cuda::InitialStateTask> tasks;
    std::vector<TrajectoryParams> params;
    std::uint64_t offset = 0, stride = 0;
    for (std::size_t b = 0; b < points.size(); ++b) {
        TrajectoryParams p;
        p.seed_index = slot_seeds[points[b].slot];
        p.head_dim = points[b].head_dim;
        p.init_scale = points[b].init_scale;
        p.frustration = 0.1;
        params.push_back(p);
        tasks.push_back(cuda::initial_state_task(shape, p, offset, points[b].slot));
        const std::uint64_t size = StateLayout(tasks.back().dims).size;
        offset += size + 3; // gaps, which must stay untouched
        stride = std::max(stride, size);
    }
    const cuda::SeedNormalsLayout seeds = cuda::seed_normals_layout(shape, max_head_dim);
    std::vector<double> normals(slot_seeds.size() * seeds.size);
    std::vector<Real> states(offset, Real(-7));
    cuda::generate_initial_states(thrust::host, master_seed, slot_seeds.data(), slot_seeds.size(), seeds, normals.data(),
                                  tasks.data(), tasks.size(), stride, states.data());

    for (std::size_t b = 0; b < points.size(); ++b) {
        const SeedDraws draws = draw_seed(shape, max_head_dim, master_seed, params[b].seed_index);
        const TrajectorySetup<Real> setup = make_trajectory<Real>(shape, params[b], draws);
        EXPECT_TRUE(same_bits(setup.initial_state, states.data() + tasks[b].state_offset))
            << "trajectory " << b << ": seed " << params[b].seed_index << ", h " << params[b].head_dim << ", s "
            << params[b].init_scale;
        EXPECT_EQ(states[tasks[b].state_offset + setup.initial_state.size()], Real(-7)) << "wrote past the state";
    }
}

TEST(InitialStateGeneration, EmbeddingMatchesMakeTrajectoryBitForBit) {
    ModelShape shape;
    shape.classes = 3;
    shape.samples_per_class = 7;
    shape.dim = 5;
    check_against_make_trajectory<double>(shape, 4);
    check_against_make_trajectory<float>(shape, 4);
    check_against_make_trajectory<double>(shape, 0);
}

TEST(InitialStateGeneration, TeacherStudentMatchesMakeTrajectoryBitForBit) {
    ModelShape shape;
    shape.kind = ModelKind::teacher_student;
    shape.classes = 3;
    shape.samples_per_class = 6;
    shape.dim = 4;
    shape.input_dim = 6;
    check_against_make_trajectory<double>(shape, 3);
    check_against_make_trajectory<float>(shape, 3);
}

// pack_batch with device_initial_states leaves host.states alone and
// describes a generation that reproduces its host-copy path exactly.
template <class Real>
void check_pack_batch(const SweepSpec& spec) {
    const Grid grid(spec);
    std::vector<std::int64_t> flat_indices;
    for (std::int64_t flat = grid.size(); flat-- > 0;) flat_indices.push_back(flat); // several seeds, reversed
    BatchOutput host_out, device_out;
    cuda::HostBatch<Real> on_host(cuda::HostMemory::pageable), on_device(cuda::HostMemory::pageable);
    cuda::pack_batch(spec, grid, flat_indices, on_host, host_out);
    on_device.device_initial_states = true;
    cuda::pack_batch(spec, grid, flat_indices, on_device, device_out);
    ASSERT_EQ(on_device.initial_tasks.size(), flat_indices.size());
    ASSERT_EQ(on_device.sizes.states, on_host.sizes.states);

    std::vector<double> normals(on_device.slot_seeds.size() * on_device.seed_normals.size);
    std::vector<Real> states(on_device.sizes.states, Real(-7));
    cuda::generate_initial_states(thrust::host, on_device.master_seed, on_device.slot_seeds.data(),
                                  on_device.slot_seeds.size(), on_device.seed_normals, normals.data(),
                                  on_device.initial_tasks.data(), on_device.initial_tasks.size(),
                                  on_device.state_stride, states.data());
    EXPECT_EQ(std::memcmp(states.data(), on_host.states.data(), states.size() * sizeof(Real)), 0);
    // Everything else of the batch is the same.
    for (std::size_t b = 0; b < flat_indices.size(); ++b) {
        EXPECT_EQ(on_device.tasks[b].state_offset, on_host.tasks[b].state_offset) << b;
        EXPECT_EQ(on_device.tasks[b].settings.reference_distance, on_host.tasks[b].settings.reference_distance) << b;
    }
    EXPECT_EQ(device_out.initial_head_A, host_out.initial_head_A);
}

TEST(InitialStateGeneration, PackBatchDescribesTheSameStates) {
    check_pack_batch<double>(mixed_spec(Precision::float64, IntegratorMethod::gd));
    check_pack_batch<float>(mixed_spec(Precision::float32, IntegratorMethod::rk4));
    check_pack_batch<double>(teacher_student_spec(Precision::float64));
}

} // namespace
} // namespace collapse::testing
