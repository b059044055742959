// The elementwise and per-trajectory passes of a lockstep step, as
// __host__ __device__ functors over a flat index. kernels/lockstep/
// lockstep_algorithm.hpp runs them with thrust::for_each, on the host
// (thrust::host, the tests) or the device (thrust::cuda::par.on(stream)),
// between the batched matrix products. SPEC §8's aggregated form:
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

// Per-trajectory state <-> the padded lockstep arrays. `pack` copies in from
// the pool (StateLayout per trajectory at its pool_offset) and zero-pads the
// head; otherwise the state goes back to the pool (padding dropped).
template <class Real>
struct TransferState {
    LockstepView<Real> v;
    Real* pool;
    bool pack;

    COLLAPSE_HD void operator()(std::int64_t e) const {
        const LockstepShape& s = v.shape;
        const std::int64_t b = e / s.state_size();
        std::int64_t r = e % s.state_size();
        const LockstepTask<Real>& task = v.tasks[b];
        const int h = task.head_dim, H = s.head, d = s.dim;
        Real* base = pool + task.pool_offset;
        Real* padded = nullptr;
        Real* own = nullptr;
        if (r < s.x_size()) {
            padded = v.x + b * s.x_size() + r;
            own = base + r;
        } else if ((r -= s.x_size()) < s.y_size()) {
            padded = v.y + b * s.y_size() + r;
            own = base + s.x_size() + r;
        } else if ((r -= s.y_size()) < s.a_size()) {
            padded = v.head_a + b * s.a_size() + r; // A[row][c], row < H
            const std::int64_t row = r / d;
            if (row < h) own = base + s.x_size() + s.y_size() + r;
        } else {
            r -= s.a_size();
            padded = v.head_b + b * s.a_size() + r; // B[a][col], col < H
            const std::int64_t a = r / H, col = r % H;
            if (col < h) own = base + s.x_size() + s.y_size() + static_cast<std::int64_t>(h) * d + a * h + col;
        }
        if (pack) *padded = own != nullptr ? *own : Real(0);
        else if (own != nullptr) *own = *padded;
    }
};

// W = I for plain trajectories (W = B A = 0 there, from the zero padding);
// head trajectories keep the product of the preceding GEMM.
template <class Real>
struct PlainHeadIdentity {
    LockstepView<Real> v;

    COLLAPSE_HD void operator()(std::int64_t e) const {
        const std::int64_t b = e / v.shape.w_size(), r = e % v.shape.w_size();
        if (v.tasks[b].head_dim == 0) v.w[e] = (r / v.shape.dim == r % v.shape.dim) ? Real(1) : Real(0);
    }
};

// CS_k[c] = sum of x_i[c] over the samples paired with k, in increasing i.
template <class Real>
struct ClassSums {
    LockstepView<Real> v;

    COLLAPSE_HD void operator()(std::int64_t e) const {
        const LockstepShape& s = v.shape;
        const std::int64_t b = e / s.y_size();
        const int k = static_cast<int>(e % s.y_size() / s.dim), c = static_cast<int>(e % s.dim);
        const int* offset = v.member_offset + b * (s.classes + 1);
        const int* members = v.members + b * s.member_stride();
        const Real* x = v.x + b * s.x_size() + c;
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
        const std::int64_t b = e / s.samples;
        const LockstepTask<Real>& task = v.tasks[b];
        const int d = s.dim;
        const bool head = task.head_dim > 0;
        const bool pull = head && !task.stop_gradient;
        const int label = v.primary_label[e], second = v.second_label[e];
        const bool frustrated = second >= 0;
        const Real* x = v.x + e * d;
        const Real* p = v.projected_x + e * d;
        const Real* y = v.y + b * s.y_size();
        const Real* wy = v.projected_y + b * s.y_size();
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
        const std::int64_t b = e / s.y_size();
        const LockstepTask<Real>& task = v.tasks[b];
        const Real degree = v.label_degree[b * s.classes + e % s.y_size() / s.dim];
        v.residual_y[e] = degree * v.projected_y[e] - v.class_sum[e];
        const bool pull = task.head_dim > 0 && !task.stop_gradient;
        v.gradient_y[e] = pull ? -(v.projected_sum[e] - degree * v.y[e]) : Real(0);
    }
};

// Fills a trajectory's watch before step 0 (runner.hpp's initial summary).
template <class Real>
struct StartWatch {
    LockstepView<Real> v;

    COLLAPSE_HD void operator()(std::int64_t b) const {
        LockstepWatch watch;
        watch.start();
        v.watch[b] = watch;
        v.summaries[b] = TrajectorySummary{}; // not_run until the trajectory stops
    }
};

// SPEC §3 at one step, per trajectory, after the evaluation: the
// observables, then runner.hpp's TrajectoryWatch (record point, peak
// accuracy, divergence, collapse, stop), as in run_trajectory. A trajectory
// that stops writes its summary and goes inactive: its state is no longer
// updated and its later trace entries stay NaN.
template <class Real>
struct WatchStep {
    LockstepView<Real> v;
    std::int64_t step;

    COLLAPSE_HD void operator()(std::int64_t b) const {
        LockstepWatch watch = v.watch[b];
        if (!watch.active) return;
        const LockstepShape& s = v.shape;
        const LockstepTask<Real>& task = v.tasks[b];
        const RunSettings& settings = task.settings;
        Real loss_sum = 0;
        int correct = 0;
        for (std::int64_t i = b * s.samples; i < (b + 1) * s.samples; ++i) {
            loss_sum += v.sample_loss[i];
            correct += v.sample_correct[i];
        }
        const double loss = static_cast<double>(Real(0.5) * task.inverse_pair_count * loss_sum);
        const double accuracy = static_cast<double>(correct) / s.samples;
        const double inverse_reference = 1.0 / settings.reference_distance;
        const double label_distance =
            inverse_reference * static_cast<double>(minimum_pairwise_distance(v.y + b * s.y_size(), s.classes, s.dim));
        const double projected_distance =
            task.head_dim == 0 ? label_distance
                               : inverse_reference * static_cast<double>(minimum_pairwise_distance(
                                                         v.projected_y + b * s.y_size(), s.classes, s.dim));
        TrajectoryRecorder recorder;
        recorder.record_steps = v.record_steps;
        recorder.record_count = s.record_count;
        recorder.label_distance = v.label_distance + b * s.record_count;
        recorder.projected_distance = v.projected_distance + b * s.record_count;
        recorder.accuracy = v.accuracy + b * s.record_count;
        recorder.loss = v.loss + b * s.record_count;
        if (watch.observe(step, StepObservation{loss, accuracy, label_distance, projected_distance}, settings, recorder,
                          true))
            v.summaries[b] = watch.summary;
        v.watch[b] = watch;
    }
};

// z <- z - lr * (1/M) (M dL/dz) for active trajectories, over the padded
// state; padded head entries are left alone (they are zero and stay zero).
template <class Real>
struct UpdateState {
    LockstepView<Real> v;

    COLLAPSE_HD void operator()(std::int64_t e) const {
        const LockstepShape& s = v.shape;
        const std::int64_t b = e / s.state_size();
        if (!v.watch[b].active) return;
        const LockstepTask<Real>& task = v.tasks[b];
        const Real lr = static_cast<Real>(task.settings.lr), scale = task.inverse_pair_count;
        std::int64_t r = e % s.state_size();
        Real* value;
        const Real* raw;
        if (r < s.x_size()) {
            value = v.x + b * s.x_size() + r;
            raw = v.gradient_x + b * s.x_size() + r;
        } else if ((r -= s.x_size()) < s.y_size()) {
            value = v.y + b * s.y_size() + r;
            raw = v.gradient_y + b * s.y_size() + r;
        } else if ((r -= s.y_size()) < s.a_size()) {
            if (r / s.dim >= task.head_dim) return;
            value = v.head_a + b * s.a_size() + r;
            raw = v.gradient_a + b * s.a_size() + r;
        } else {
            r -= s.a_size();
            if (r % s.head >= task.head_dim) return;
            value = v.head_b + b * s.a_size() + r;
            raw = v.gradient_b + b * s.a_size() + r;
        }
        const Real gradient = *raw * scale;
        *value -= lr * gradient;
    }
};

// Whether a trajectory still runs (polled to end the loop early).
struct IsActive {
    COLLAPSE_HD bool operator()(const LockstepWatch& watch) const { return watch.active; }
};

} // namespace collapse::lockstep
