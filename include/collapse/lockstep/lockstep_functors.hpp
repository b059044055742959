// The elementwise and per-trajectory passes of a lockstep step, as
// __host__ __device__ functors over a flat index. kernels/lockstep/
// lockstep_algorithm.hpp runs them with thrust::for_each, on the host
// (thrust::host, the tests) or the device (thrust::cuda::par_nosync.on(stream)),
// between the batched matrix products, two of them fused into one pass
// where fused_passes.hpp says; per lane, with the problem data and
// outputs of the lane's trajectory t = lane_trajectory[lane]. SPEC §8's aggregated form:
//
//   R1_i = sum_{k in labels(i)} (W x_i - y_k)      Q_i = sum_{k in labels(i)} (W y_k - x_i)
//   R2_k = |S_k| W y_k - CS_k                       P_k = W CS_k - |S_k| y_k
//   M dL/dx_i = W^T R1_i - (1-s) Q_i                M dL/dy_k = W^T R2_k - (1-s) P_k
//   M dL/dW = sum_i R1_i x_i^T + sum_k R2_k y_k^T   dL/dA = B^T dL/dW, dL/dB = dL/dW A^T
//
// A plain trajectory (h = 0) runs the same passes with W = I and s = 1:
// R1_i is then M dL/dx_i and R2_k is M dL/dy_k of the plain model exactly
// (products with I are exact), and its loss keeps only the r terms.
#pragma once

#include <cmath>
#include <cstdint>

#include "collapse/lockstep/lockstep_layout.hpp"
#include "collapse/model/hd.hpp"
#include "collapse/model/observables.hpp"
#include "collapse/model/small_matrix.hpp"
#include "collapse/trajectory/runner.hpp"

namespace collapse::lockstep {

enum class StatePart { x, y, head_a, head_b };

// Where entry r of a lane's padded state (X, Y, A [H][d], B [d][H], in a
// row) lies: its array, the size of one lane's block of that array, the
// offset in the block, and whether it is an entry of a head of width h
// rather than the zero padding of A's rows or B's columns beyond h.
struct PaddedEntry {
    StatePart part;
    std::int64_t block;
    std::int64_t offset;
    bool in_head;
};

COLLAPSE_HD inline PaddedEntry padded_entry(const LockstepShape& s, int h, std::int64_t r) {
    if (r < s.x_size()) return {StatePart::x, s.x_size(), r, true};
    if ((r -= s.x_size()) < s.y_size()) return {StatePart::y, s.y_size(), r, true};
    if ((r -= s.y_size()) < s.a_size()) return {StatePart::head_a, s.a_size(), r, r / s.dim < h}; // A[row][c]
    r -= s.a_size();
    return {StatePart::head_b, s.a_size(), r, r % s.head < h}; // B[a][col]
}

// The padded state array of `part`, and its gradient.
template <class Real>
COLLAPSE_HD Real* state_array(const LockstepView<Real>& v, StatePart part) {
    return part == StatePart::x ? v.x : part == StatePart::y ? v.y : part == StatePart::head_a ? v.head_a : v.head_b;
}

template <class Real>
COLLAPSE_HD const Real* gradient_array(const LockstepView<Real>& v, StatePart part) {
    return part == StatePart::x        ? v.gradient_x
           : part == StatePart::y      ? v.gradient_y
           : part == StatePart::head_a ? v.gradient_a
                                       : v.gradient_b;
}

// One entry r of a lane's padded state <-> its trajectory's state in the pool
// (StateLayout: X, Y, A [h][d], B [d][h]).
template <class Real>
COLLAPSE_HD void transfer_state_entry(const LockstepView<Real>& v, Real* pool, bool pack, std::int64_t lane,
                                      const LockstepTask<Real>& task, std::int64_t r) {
    const LockstepShape& s = v.shape;
    const int h = task.head_dim;
    const PaddedEntry at = padded_entry(s, h, r);
    Real* padded = state_array(v, at.part) + lane * at.block + at.offset;
    std::int64_t own = at.offset; // in the trajectory's state
    if (at.part == StatePart::y) own += s.x_size();
    else if (at.part == StatePart::head_a) own += s.x_size() + s.y_size();
    else if (at.part == StatePart::head_b) // B[a][col] of the padded d x H is B[a][col] of the own d x h
        own = s.x_size() + s.y_size() + static_cast<std::int64_t>(h) * s.dim + at.offset / s.head * h +
              at.offset % s.head;
    Real* base = pool + task.pool_offset;
    if (pack) *padded = at.in_head ? base[own] : Real(0);
    else if (at.in_head) base[own] = *padded;
}

// Per-trajectory state <-> the padded lockstep arrays. `pack` copies in from
// the pool (StateLayout per trajectory at its pool_offset) and zero-pads the
// head; otherwise the state goes back to the pool (padding dropped). Over
// lanes[0..n) when `lanes` is given, else over every lane; each lane moves
// the state of its trajectory (empty lanes, -1, are skipped).
template <class Real>
struct TransferState {
    LockstepView<Real> v;
    Real* pool;
    bool pack;
    const std::int64_t* lanes = nullptr;

    COLLAPSE_HD void operator()(std::int64_t e) const {
        const LockstepShape& s = v.shape;
        const std::int64_t i = e / s.state_size();
        const std::int64_t lane = lanes != nullptr ? lanes[i] : i;
        const std::int64_t t = v.lane_trajectory[lane];
        if (t < 0) return;
        transfer_state_entry(v, pool, pack, lane, v.tasks[t], e % s.state_size());
    }
};

// W = I for plain trajectories (W = B A = 0 there, from the zero padding);
// head trajectories keep the product of the preceding GEMM.
template <class Real>
struct PlainHeadIdentity {
    LockstepView<Real> v;

    COLLAPSE_HD void operator()(std::int64_t e) const {
        const std::int64_t lane = e / v.shape.w_size(), r = e % v.shape.w_size();
        const std::int64_t t = v.lane_trajectory[lane];
        if (t >= 0 && v.tasks[t].head_dim == 0) v.w[e] = (r / v.shape.dim == r % v.shape.dim) ? Real(1) : Real(0);
    }
};

// CS_k[c] = sum of x_i[c] over the samples paired with k, in increasing i.
template <class Real>
struct ClassSums {
    LockstepView<Real> v;

    COLLAPSE_HD void operator()(std::int64_t e) const {
        const LockstepShape& s = v.shape;
        const std::int64_t lane = e / s.y_size();
        const std::int64_t t = v.lane_trajectory[lane];
        if (t < 0) return;
        const int k = static_cast<int>(e % s.y_size() / s.dim), c = static_cast<int>(e % s.dim);
        const int* offset = v.member_offset + t * (s.classes + 1);
        const int* members = v.members + t * s.member_stride();
        const Real* x = v.x + lane * s.x_size() + c;
        Real sum = 0;
        for (int j = offset[k]; j < offset[k + 1]; ++j) sum += x[static_cast<std::int64_t>(members[j]) * s.dim];
        v.class_sum[e] = sum;
    }
};

// Per sample: R1_i, the start of its gradient -(1-s) Q_i (the GEMM with W
// adds W^T R1_i), its squared residuals and whether its nearest label to
// W x_i is c_i (ties to the lower class, as nearest_label.hpp).
template <class Real>
struct SampleResiduals {
    LockstepView<Real> v;

    COLLAPSE_HD void operator()(std::int64_t e) const {
        const LockstepShape& s = v.shape;
        const std::int64_t lane = e / s.samples;
        const std::int64_t t = v.lane_trajectory[lane];
        if (t < 0) return;
        const std::int64_t sample = t * s.samples + e % s.samples; // in the trajectory's label block
        const LockstepTask<Real>& task = v.tasks[t];
        const int d = s.dim;
        const bool head = task.head_dim > 0;
        const bool pull = head && !task.stop_gradient;
        const int label = v.primary_label[sample], second = v.second_label[sample];
        const bool frustrated = second >= 0;
        const Real* x = v.x + e * d;
        const Real* p = v.projected_x + e * d;
        const Real* y = v.y + lane * s.y_size();
        const Real* wy = v.projected_y + lane * s.y_size();
        Real* r1 = v.residual_x + e * d;
        Real* g = v.gradient_x + e * d;
        Real loss = 0;
        for (int c = 0; c < d; ++c) {
            const Real r = p[c] - y[label * d + c];
            const Real q = wy[label * d + c] - x[c];
            Real r_sum = r, q_sum = q;
            loss += r * r;
            if (head) loss += q * q;
            if (frustrated) {
                const Real r2 = p[c] - y[second * d + c];
                const Real q2 = wy[second * d + c] - x[c];
                r_sum = r + r2;
                q_sum = q + q2;
                loss += r2 * r2;
                if (head) loss += q2 * q2;
            }
            r1[c] = r_sum;
            g[c] = pull ? -q_sum : Real(0);
        }
        v.sample_loss[e] = loss;
        int nearest = 0;
        Real smallest = 0;
        for (int k = 0; k < s.classes; ++k) {
            const Real distance = small_matrix::squared_distance(p, y + k * d, d);
            if (k == 0 || distance < smallest) {
                smallest = distance;
                nearest = k;
            }
        }
        v.sample_correct[e] = nearest == label ? 1 : 0;
    }
};

// Per label entry: R2_k and the start of its gradient -(1-s) P_k.
template <class Real>
struct LabelResiduals {
    LockstepView<Real> v;

    COLLAPSE_HD void operator()(std::int64_t e) const {
        const LockstepShape& s = v.shape;
        const std::int64_t lane = e / s.y_size();
        const std::int64_t t = v.lane_trajectory[lane];
        if (t < 0) return;
        const LockstepTask<Real>& task = v.tasks[t];
        const Real degree = v.label_degree[t * s.classes + e % s.y_size() / s.dim];
        v.residual_y[e] = degree * v.projected_y[e] - v.class_sum[e];
        const bool pull = task.head_dim > 0 && !task.stop_gradient;
        v.gradient_y[e] = pull ? -(v.projected_sum[e] - degree * v.y[e]) : Real(0);
    }
};

// Lane `lane` takes trajectory t from loop step `first_step` on: its watch
// is filled before the trajectory's step 0 (runner.hpp's initial summary).
template <class Real>
COLLAPSE_HD void start_lane(const LockstepView<Real>& v, std::int64_t lane, std::int64_t t, std::int64_t first_step) {
    LockstepWatch watch;
    watch.start();
    v.watch[lane] = watch;
    v.lane_trajectory[lane] = t;
    v.lane_first_step[lane] = first_step;
    v.summaries[t] = TrajectorySummary{}; // not_run until the trajectory stops
}

// Before the loop: lane l takes trajectory l, from step 0 (then TransferState packs the states).
template <class Real>
struct StartLanes {
    LockstepView<Real> v;

    COLLAPSE_HD void operator()(std::int64_t lane) const { start_lane(v, lane, lane, 0); }
};

// Refill at a poll, over free_lanes[0..free) x state entries, after the
// stopped trajectories of those lanes went back to the pool: the first
// `refill` of them take the queued trajectories next, next + 1, ... from
// loop step `first_step` on (state packed from the pool, zero-padded, watch
// started); the others become empty (-1). Reads no lane_trajectory.
template <class Real>
struct RefillLanes {
    LockstepView<Real> v;
    Real* pool;
    std::int64_t next;
    std::int64_t refill;
    std::int64_t first_step;

    COLLAPSE_HD void operator()(std::int64_t e) const {
        const std::int64_t i = e / v.shape.state_size(), r = e % v.shape.state_size();
        const std::int64_t lane = v.free_lanes[i];
        if (i >= refill) {
            if (r == 0) v.lane_trajectory[lane] = -1;
            return;
        }
        const std::int64_t t = next + i;
        transfer_state_entry(v, pool, true, lane, v.tasks[t], r);
        if (r == 0) start_lane(v, lane, t, first_step);
    }
};

// SPEC §3 at one step, per trajectory, after the evaluation: the
// observables, then runner.hpp's TrajectoryWatch (record point, peak
// accuracy, divergence, collapse, stop), as in run_trajectory. A trajectory
// that stops writes its summary and goes inactive: its state is no longer
// updated and its later trace entries stay NaN. Per lane, at the loop step
// *v.loop_step (device memory, so that a captured step can be replayed):
// the trajectory's own step is the loop step - lane_first_step.
template <class Real>
struct WatchStep {
    LockstepView<Real> v;

    COLLAPSE_HD void operator()(std::int64_t lane) const {
        LockstepWatch watch = v.watch[lane];
        if (!watch.active) return;
        const LockstepShape& s = v.shape;
        const std::int64_t t = v.lane_trajectory[lane];
        const std::int64_t step = *v.loop_step - v.lane_first_step[lane];
        const LockstepTask<Real>& task = v.tasks[t];
        const RunSettings& settings = task.settings;
        Real loss_sum = 0;
        int correct = 0;
        for (std::int64_t i = lane * s.samples; i < (lane + 1) * s.samples; ++i) {
            loss_sum += v.sample_loss[i];
            correct += v.sample_correct[i];
        }
        const double loss = static_cast<double>(Real(0.5) * task.inverse_pair_count * loss_sum);
        const double accuracy = static_cast<double>(correct) / s.samples;
        const double inverse_reference = 1.0 / settings.reference_distance;
        const double label_distance =
            inverse_reference *
            static_cast<double>(minimum_pairwise_distance(v.y + lane * s.y_size(), s.classes, s.dim));
        const double projected_distance =
            task.head_dim == 0 ? label_distance
                               : inverse_reference * static_cast<double>(minimum_pairwise_distance(
                                                         v.projected_y + lane * s.y_size(), s.classes, s.dim));
        TrajectoryRecorder recorder;
        recorder.record_steps = v.record_steps;
        recorder.record_count = s.record_count;
        recorder.label_distance = v.label_distance + t * s.record_count;
        recorder.projected_distance = v.projected_distance + t * s.record_count;
        recorder.accuracy = v.accuracy + t * s.record_count;
        recorder.loss = v.loss + t * s.record_count;
        if (watch.observe(step, StepObservation{loss, accuracy, label_distance, projected_distance}, settings, recorder,
                          true))
            v.summaries[t] = watch.summary;
        v.watch[lane] = watch;
    }
};

// z <- z - lr * (1/M) (M dL/dz) for active lanes, over the padded state;
// padded head entries are left alone (they are zero and stay zero).
template <class Real>
struct UpdateState {
    LockstepView<Real> v;

    COLLAPSE_HD void operator()(std::int64_t e) const {
        const LockstepShape& s = v.shape;
        const std::int64_t b = e / s.state_size(); // the lane
        if (!v.watch[b].active) return;
        const LockstepTask<Real>& task = v.tasks[v.lane_trajectory[b]];
        const Real lr = static_cast<Real>(task.settings.lr), scale = task.inverse_pair_count;
        const PaddedEntry at = padded_entry(s, task.head_dim, e % s.state_size());
        if (!at.in_head) return;
        const std::int64_t index = b * at.block + at.offset;
        const Real gradient = gradient_array(v, at.part)[index] * scale;
        state_array(v, at.part)[index] -= lr * gradient;
    }
};

// Whether a lane's trajectory still runs (polled to end the loop early).
struct IsActive {
    COLLAPSE_HD bool operator()(const LockstepWatch& watch) const { return watch.active; }
};

// Whether a lane is free: its trajectory stopped, or it is empty (the stencil of the compaction).
struct IsInactive {
    COLLAPSE_HD bool operator()(const LockstepWatch& watch) const { return !watch.active; }
};

} // namespace collapse::lockstep
