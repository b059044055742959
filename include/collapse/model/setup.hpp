// Host-side construction of a trajectory (SPEC §1, §5): the seed's random
// draws, the frustrated pair set at a given f, the initial state and D_ref.
// Both backends start from these, so initial states agree bit for bit.
#pragma once

#include <cstdint>
#include <vector>

#include "collapse/config.hpp"
#include "collapse/model/collapse_model.hpp"
#include "collapse/results.hpp"

namespace collapse {

// Everything random about one seed index, at unit scale. It depends on the
// shape and the largest head width only, never on f, h, lr or init_scale, so
// the whole grid shares it (common random numbers).
struct SeedDraws {
    std::vector<double> sample_normals;  // [N][d], embedding kind
    std::vector<double> label_normals;   // [K][d]
    std::vector<double> head_A_normals;  // [h_max][d]: A at width h is the first h rows / sqrt(d)
    std::vector<double> head_B_normals;  // [h_max][d]: B[c][r] = row r, entry c / sqrt(h)
    std::vector<double> encoder_normals; // [d][p], teacher_student
    std::vector<double> inputs;          // u_i [N][p], teacher_student
    std::vector<double> teacher;         // [K][p], teacher_student
    std::vector<int> primary_label;      // c_i [N]
    std::vector<int> second_label;       // c'_i [N], the label sample i gets when frustrated
    std::vector<int> frustration_order;  // the permutation pi [N]
};

SeedDraws draw_seed(const ModelShape& shape, int max_head_dim, std::uint64_t master_seed, std::int64_t seed_index);

// Number of frustrated samples at fraction f: floor(f N + 1/2).
int frustrated_count(double frustration, int samples);

// The host-owned data behind one trajectory's ModelProblem.
template <class Real>
struct TrajectorySetup {
    TrajectoryDims dims;
    bool stop_gradient = false;
    int pair_count = 0; // M
    std::vector<int> primary_label, second_label; // second_label -1 unless frustrated at this f
    std::vector<Real> label_degree;  // |S_k|
    std::vector<Real> inputs;        // teacher_student
    std::vector<Real> initial_state; // StateLayout(dims)
    double reference_distance = 0;   // D_ref

    ModelProblem<Real> problem() const;
};

template <class Real>
TrajectorySetup<Real> make_trajectory(const ModelShape& shape, const TrajectoryParams& params, const SeedDraws& draws);

// D_ref: min over k != l of ||m_k - m_l||, m_k the mean of label k and the
// samples whose primary label is k (SPEC §3). Works on any precision.
template <class Real>
double reference_distance(const TrajectoryDims& dims, const int* primary_label, const Real* samples, const Real* labels);

// /initial and /graph content of one seed at the spec's default init_scale.
SeedData make_seed_data(const SweepSpec& spec, std::int64_t seed_index);

extern template struct TrajectorySetup<float>;
extern template struct TrajectorySetup<double>;

} // namespace collapse
