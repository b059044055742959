// The lockstep batch (docs/cuda-backend.md, "Large states: lockstep cuBLAS
// path"): every trajectory of a batch has the same K, N and d and steps
// together, one batched matrix product or elementwise pass at a time across
// the whole batch. Head widths vary along the grid; A (h x d) and B (d x h)
// are zero-padded to the batch's widest head H. Padded rows of A and columns
// of B stay exactly zero under the flow (dA = B^T G has row r = B[:,r]^T G,
// dB = G A^T has column r = G A[r,:]^T), and the update is masked there too.
//
// The batch's B trajectories run on L <= B lanes: the state and evaluation
// arrays are one block per lane at a fixed stride, so the matrix products
// are strided-batched GEMMs over the lanes; the problem arrays and outputs
// are one block per trajectory. A lane freed by a trajectory that stopped
// is refilled with the next queued trajectory (run_lockstep). This header
// is free of CUDA and Thrust.
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
    std::int64_t lanes = 0; // L <= B lanes the trajectories run on (lane_count)
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

// L for a batch of B trajectories: `requested` lanes, B when 0 (or more than B).
inline std::int64_t lane_count(std::int64_t batch, std::int64_t requested) {
    return requested <= 0 || requested > batch ? batch : requested;
}

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
// Blocks are per trajectory [B] or per lane [L] at the strides of
// LockstepShape; a lane's problem data and outputs are those of its
// trajectory t = lane_trajectory[lane].
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
    Real* x = nullptr;      // [L][N][d]
    Real* y = nullptr;      // [L][K][d]
    Real* head_a = nullptr; // [L][H][d]
    Real* head_b = nullptr; // [L][d][H]
    // One evaluation.
    Real* w = nullptr;              // [L][d][d], W = B A (identity for plain trajectories)
    Real* projected_x = nullptr;    // [L][N][d], rows W x_i
    Real* projected_y = nullptr;    // [L][K][d], rows W y_k
    Real* class_sum = nullptr;      // [L][K][d], CS_k = sum of x_i over i in S_k
    Real* projected_sum = nullptr;  // [L][K][d], rows W CS_k
    Real* residual_x = nullptr;     // [L][N][d], R1_i
    Real* residual_y = nullptr;     // [L][K][d], R2_k
    Real* gradient_x = nullptr;     // [L][N][d], M dL/dx_i
    Real* gradient_y = nullptr;     // [L][K][d], M dL/dy_k
    Real* gradient_w = nullptr;     // [L][d][d], M dL/dW
    Real* gradient_a = nullptr;     // [L][H][d], M dL/dA
    Real* gradient_b = nullptr;     // [L][d][H], M dL/dB
    Real* sample_loss = nullptr;    // [L][N], the sample's squared residuals
    int* sample_correct = nullptr;  // [L][N], 1 when the nearest label to W x_i is c_i
    // Watching and output.
    LockstepWatch* watch = nullptr;             // [L]
    std::int64_t* lane_trajectory = nullptr;    // [L], the lane's trajectory; -1 = empty
    std::int64_t* lane_first_step = nullptr;    // [L], the loop step its trajectory started at
    std::int64_t* free_lanes = nullptr;         // [L], scratch: inactive lanes at a poll
    std::int64_t* loop_step = nullptr;          // [1], the loop step; advanced by the step's last pass
    const std::int64_t* record_steps = nullptr; // [T]
    double* label_distance = nullptr;           // [B][T]
    double* projected_distance = nullptr;       // [B][T]
    double* accuracy = nullptr;                 // [B][T]
    double* loss = nullptr;                     // [B][T]
    TrajectorySummary* summaries = nullptr;     // [B]
};

// Element counts of the arrays a batch needs, so that host and device
// storage allocate the same thing. Per lane [L]: the state and evaluation
// blocks, sample_loss/sample_correct (lane_samples) and the lane
// bookkeeping; per trajectory [B]: labels, degrees, membership lists, traces.
struct LockstepSizes {
    std::int64_t per_sample_block, per_label_block, head_a, head_w, lane_samples, lanes; // [L]
    std::int64_t samples, members, member_offsets, labels, traces;                       // [B]

    explicit LockstepSizes(const LockstepShape& s)
        : per_sample_block(s.lanes * s.x_size()), per_label_block(s.lanes * s.y_size()), head_a(s.lanes * s.a_size()),
          head_w(s.lanes * s.w_size()), lane_samples(s.lanes * s.samples), lanes(s.lanes),
          samples(s.batch * s.samples), members(s.batch * s.member_stride()), member_offsets(s.batch * (s.classes + 1)),
          labels(s.batch * s.classes), traces(s.batch * s.record_count) {}

    // Reals of the per-lane state and evaluation arrays (sample_loss included).
    std::int64_t lane_reals() const {
        return 4 * per_sample_block + 6 * per_label_block + 4 * head_a + 2 * head_w + lane_samples;
    }
    // Reals of the per-trajectory arrays (label degrees).
    std::int64_t trajectory_reals() const { return labels; }
};

// Bytes the lockstep path needs on the device per lane of this shape: the
// padded state and evaluation arrays, sample_correct, watch and lane bookkeeping.
inline std::size_t lockstep_bytes_per_lane(const TrajectoryDims& dims, std::size_t real_bytes) {
    const LockstepShape shape{1, 1, dims.samples, dims.classes, dims.dim, dims.head_dim, 0};
    const LockstepSizes sizes(shape);
    return static_cast<std::size_t>(sizes.lane_reals()) * real_bytes +
           static_cast<std::size_t>(sizes.lane_samples) * sizeof(int) + sizeof(LockstepWatch) +
           3 * sizeof(std::int64_t);
}

// Bytes per trajectory of the batch, lane or not: the problem arrays, the
// pool its state comes from and goes back to, traces, summary and task.
inline std::size_t lockstep_bytes_per_queued_trajectory(const TrajectoryDims& dims, int record_count,
                                                        std::size_t real_bytes) {
    const LockstepShape shape{1, 1, dims.samples, dims.classes, dims.dim, dims.head_dim, record_count};
    const LockstepSizes sizes(shape);
    return static_cast<std::size_t>(sizes.trajectory_reals() + static_cast<std::int64_t>(StateLayout(dims).size)) *
               real_bytes +
           static_cast<std::size_t>(sizes.samples * 2 + sizes.members + sizes.member_offsets) * sizeof(int) +
           static_cast<std::size_t>(4 * sizes.traces) * sizeof(double) + sizeof(TrajectorySummary) +
           sizeof(LockstepTask<double>);
}

// Bytes for a batch of `batch` trajectories on `lanes` lanes.
inline std::size_t lockstep_bytes(const TrajectoryDims& dims, int record_count, std::size_t real_bytes,
                                  std::int64_t batch, std::int64_t lanes) {
    return static_cast<std::size_t>(lane_count(batch, lanes)) * lockstep_bytes_per_lane(dims, real_bytes) +
           static_cast<std::size_t>(batch) * lockstep_bytes_per_queued_trajectory(dims, record_count, real_bytes);
}

// Bytes per trajectory when every trajectory has its own lane (L = B).
inline std::size_t lockstep_bytes_per_trajectory(const TrajectoryDims& dims, int record_count, std::size_t real_bytes) {
    return lockstep_bytes_per_lane(dims, real_bytes) +
           lockstep_bytes_per_queued_trajectory(dims, record_count, real_bytes);
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
