// The lockstep batch (docs/cuda-backend.md, "Large states: lockstep cuBLAS
// path"): every trajectory of a batch has the same K, N and d and steps
// together, one batched matrix product or elementwise pass at a time across
// the whole batch. Head widths vary along the grid; A (h x d) and B (d x h)
// are zero-padded to the batch's widest head H. Padded rows of A and columns
// of B stay exactly zero under the flow (dA = B^T G has row r = B[:,r]^T G,
// dB = G A^T has column r = G A[r,:]^T), and the update is masked there too.
//
// Every array is one block per trajectory at a fixed stride, so the matrix
// products are strided-batched GEMMs. This header is free of CUDA and Thrust.
#pragma once

#include <cstddef>
#include <cstdint>

#include "collapse/config.hpp"
#include "collapse/model/hd.hpp"
#include "collapse/model/layout.hpp"
#include "collapse/results.hpp"
#include "collapse/trajectory/runner.hpp"

namespace collapse::lockstep {

// Shape of one lockstep batch.
struct LockstepShape {
    std::int64_t batch = 0; // B trajectories
    int samples = 0;        // N
    int classes = 0;        // K
    int dim = 0;            // d
    int head = 0;           // H, the widest head of the batch (0: every trajectory is plain)
    int record_count = 0;   // T

    COLLAPSE_HD std::int64_t x_size() const { return static_cast<std::int64_t>(samples) * dim; }
    COLLAPSE_HD std::int64_t y_size() const { return static_cast<std::int64_t>(classes) * dim; }
    COLLAPSE_HD std::int64_t a_size() const { return static_cast<std::int64_t>(head) * dim; }
    COLLAPSE_HD std::int64_t w_size() const { return static_cast<std::int64_t>(dim) * dim; }
    // One trajectory's padded state: X, Y, A (H x d), B (d x H).
    COLLAPSE_HD std::int64_t state_size() const { return x_size() + y_size() + 2 * a_size(); }
    // Sample-class membership lists: at most two pairs per sample.
    COLLAPSE_HD std::int64_t member_stride() const { return 2 * static_cast<std::int64_t>(samples); }
};

// The fixed data of one trajectory.
template <class Real>
struct LockstepTask {
    int head_dim = 0; // h <= H; 0 = plain model
    bool stop_gradient = false;
    Real inverse_pair_count = 0; // 1 / M
    RunSettings settings;
    std::size_t pool_offset = 0; // where its state starts in the per-trajectory pool (StateLayout)
};

// What SPEC §3's bookkeeping carries from step to step: runner.hpp's watch.
using LockstepWatch = TrajectoryWatch;

// Raw pointers to every array of a batch, on the host or the device.
// Blocks are per trajectory at the strides of LockstepShape.
template <class Real>
struct LockstepView {
    LockstepShape shape;
    // Problem (fixed for the run).
    const LockstepTask<Real>* tasks = nullptr; // [B]
    const int* primary_label = nullptr;        // [B][N]
    const int* second_label = nullptr;         // [B][N], -1 = not frustrated
    const Real* label_degree = nullptr;        // [B][K], |S_k|
    const int* member_offset = nullptr;        // [B][K+1], into the trajectory's block of `members`
    const int* members = nullptr;              // [B][2N], samples of S_k in increasing order
    // State, padded.
    Real* x = nullptr;      // [B][N][d]
    Real* y = nullptr;      // [B][K][d]
    Real* head_a = nullptr; // [B][H][d]
    Real* head_b = nullptr; // [B][d][H]
    // One evaluation.
    Real* w = nullptr;              // [B][d][d], W = B A (identity for plain trajectories)
    Real* projected_x = nullptr;    // [B][N][d], rows W x_i
    Real* projected_y = nullptr;    // [B][K][d], rows W y_k
    Real* class_sum = nullptr;      // [B][K][d], CS_k = sum of x_i over i in S_k
    Real* projected_sum = nullptr;  // [B][K][d], rows W CS_k
    Real* residual_x = nullptr;     // [B][N][d], R1_i
    Real* residual_y = nullptr;     // [B][K][d], R2_k
    Real* gradient_x = nullptr;     // [B][N][d], M dL/dx_i
    Real* gradient_y = nullptr;     // [B][K][d], M dL/dy_k
    Real* gradient_w = nullptr;     // [B][d][d], M dL/dW
    Real* gradient_a = nullptr;     // [B][H][d], M dL/dA
    Real* gradient_b = nullptr;     // [B][d][H], M dL/dB
    Real* sample_loss = nullptr;    // [B][N], the sample's squared residuals
    int* sample_correct = nullptr;  // [B][N], 1 when the nearest label to W x_i is c_i
    // Watching and output.
    LockstepWatch* watch = nullptr;             // [B]
    const std::int64_t* record_steps = nullptr; // [T]
    double* label_distance = nullptr;           // [B][T]
    double* projected_distance = nullptr;       // [B][T]
    double* accuracy = nullptr;                 // [B][T]
    double* loss = nullptr;                     // [B][T]
    TrajectorySummary* summaries = nullptr;     // [B]
};

// Element counts of the arrays a batch needs, so that host and device
// storage allocate the same thing.
struct LockstepSizes {
    std::int64_t per_sample_block, per_label_block, head_a, head_w, samples, members, member_offsets, labels, traces;

    explicit LockstepSizes(const LockstepShape& s)
        : per_sample_block(s.batch * s.x_size()), per_label_block(s.batch * s.y_size()), head_a(s.batch * s.a_size()),
          head_w(s.batch * s.w_size()), samples(s.batch * s.samples), members(s.batch * s.member_stride()),
          member_offsets(s.batch * (s.classes + 1)), labels(s.batch * s.classes), traces(s.batch * s.record_count) {}

    // Reals of the state-sized and evaluation arrays above, per batch.
    std::int64_t reals() const {
        return 4 * per_sample_block + 6 * per_label_block + 4 * head_a + 2 * head_w + samples + labels;
    }
};

// Bytes the lockstep path needs on the device per trajectory of this shape.
inline std::size_t lockstep_bytes_per_trajectory(const TrajectoryDims& dims, int record_count, std::size_t real_bytes) {
    LockstepShape shape{1, dims.samples, dims.classes, dims.dim, dims.head_dim, record_count};
    const LockstepSizes sizes(shape);
    // The padded arrays, plus the per-trajectory pool the states come from and go back to.
    return static_cast<std::size_t>(sizes.reals() + static_cast<std::int64_t>(StateLayout(dims).size)) * real_bytes +
           static_cast<std::size_t>(sizes.samples * 3 + sizes.members + sizes.member_offsets) * sizeof(int) +
           static_cast<std::size_t>(4 * sizes.traces) * sizeof(double) + sizeof(LockstepWatch) +
           sizeof(TrajectorySummary) + sizeof(LockstepTask<double>);
}

// The size rule: the lockstep path when one trajectory's state (X, Y, A, B at
// the widest head, in the run precision) is larger than `crossover` times
// the shared memory one block may use, so the block-per-trajectory kernel
// would stream it from global memory; the kernels otherwise. crossover = 1
// until measured (docs/cuda-backend.md). The path does only the embedding
// kind with gradient descent: teacher_student and rk4 keep the kernels.
inline bool prefer_lockstep(const TrajectoryDims& dims, Precision precision, IntegratorMethod method,
                            std::size_t shared_memory_bytes_per_block, double crossover = 1.0) {
    if (dims.teacher_student() || method != IntegratorMethod::gd) return false;
    const std::size_t real_bytes = precision == Precision::float32 ? sizeof(float) : sizeof(double);
    const double state_bytes = static_cast<double>(StateLayout(dims).size * real_bytes);
    return state_bytes > crossover * static_cast<double>(shared_memory_bytes_per_block);
}

} // namespace collapse::lockstep
