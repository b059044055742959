// The model's code paths agree bit for bit: the versions compiled for a fixed
// dimension (d = 8, 16, 32, 64, vector packs, register blocks) against the
// generic one (any d, one lane at a time, which is also what the CUDA kernel
// runs), and the x86 vector scan of the accuracy against the generic scan.
// docs/performance.md explains why the bits can agree at all.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <tuple>
#include <vector>

#include "collapse/model/collapse_model.hpp"
#include "collapse/model/nearest_label.hpp"
#include "collapse/model/setup.hpp"

namespace collapse::testing {
namespace {

enum class Variant { plain, head_stop_gradient, head, teacher_student };

template <class Real>
bool same_bits(const std::vector<Real>& a, const std::vector<Real>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(Real)) == 0;
}

template <class Real>
void expect_paths_agree(int dim, int classes, Variant variant) {
    ModelShape shape;
    shape.classes = classes;
    shape.samples_per_class = 9; // N = 9 K: not a multiple of the register block, so the tail path runs too
    shape.dim = dim;
    shape.kind = variant == Variant::teacher_student ? ModelKind::teacher_student : ModelKind::embedding;
    shape.input_dim = variant == Variant::teacher_student ? 7 : 0;
    TrajectoryParams params;
    params.frustration = 0.3;
    params.head_dim = variant == Variant::plain ? 0 : 5;
    params.stop_gradient = variant != Variant::head;
    params.seed_index = 3;
    const SeedDraws draws = draw_seed(shape, params.head_dim, 99, params.seed_index);
    const TrajectorySetup<Real> setup = make_trajectory<Real>(shape, params, draws);
    const ModelProblem<Real> problem = setup.problem();

    // The initial state, and a state a few gd steps on, where labels have moved.
    std::vector<Real> state = setup.initial_state;
    for (int round = 0; round < 2; ++round) {
        std::vector<Real> fixed_gradient(state.size()), generic_gradient(state.size());
        std::vector<Real> fixed_workspace(WorkspaceLayout(setup.dims).size), generic_workspace(fixed_workspace.size());
        const Evaluation<Real> fixed = evaluate(problem, state.data(), fixed_gradient.data(), fixed_workspace.data(), true);
        const Evaluation<Real> generic =
            evaluate_for_dim<0>(problem, state.data(), generic_gradient.data(), generic_workspace.data(), true);
        EXPECT_EQ(std::memcmp(&fixed.loss, &generic.loss, sizeof(Real)), 0) << fixed.loss << " vs " << generic.loss;
        EXPECT_EQ(fixed.correct, generic.correct);
        EXPECT_TRUE(same_bits(fixed_gradient, generic_gradient));
        const WorkspaceLayout layout(setup.dims);
        const auto projected = [&](const std::vector<Real>& workspace) {
            return std::vector<Real>(workspace.begin() + static_cast<long>(layout.projected_labels),
                                     workspace.begin() + static_cast<long>(layout.projected_labels) + classes * dim);
        };
        if (params.head_dim > 0) {
            EXPECT_TRUE(same_bits(projected(fixed_workspace), projected(generic_workspace)));
        }
        for (std::size_t e = 0; e < state.size(); ++e) state[e] -= Real(0.05) * fixed_gradient[e] * 20;
    }
}

class DimensionPaths : public ::testing::TestWithParam<std::tuple<int, int, Variant>> {};

TEST_P(DimensionPaths, FixedDimensionEqualsGenericBitForBitInFloat) {
    const auto [dim, classes, variant] = GetParam();
    expect_paths_agree<float>(dim, classes, variant);
}

TEST_P(DimensionPaths, FixedDimensionEqualsGenericBitForBitInDouble) {
    const auto [dim, classes, variant] = GetParam();
    expect_paths_agree<double>(dim, classes, variant);
}

INSTANTIATE_TEST_SUITE_P(Shapes, DimensionPaths,
                         ::testing::Combine(::testing::Values(8, 16, 32, 64), ::testing::Values(3, 10, 20),
                                            ::testing::Values(Variant::plain, Variant::head_stop_gradient, Variant::head,
                                                              Variant::teacher_student)));

// Scalar reference: the same multiply-add chain per label, the first strict minimum.
template <class Real>
int reference_nearest(const Real* point, const std::vector<Real>& labels, int classes, int dim) {
    int best = 0;
    Real smallest = 0;
    for (int k = 0; k < classes; ++k) {
        Real distance = 0;
        for (int c = 0; c < dim; ++c) {
            const Real difference = point[c] - labels[k * dim + c];
            distance = simd::multiply_add(difference, difference, distance);
        }
        if (k == 0 || distance < smallest) {
            smallest = distance;
            best = k;
        }
    }
    return best;
}

template <class Real>
void expect_scans_agree(int classes, int dim, std::mt19937& random) {
    std::normal_distribution<double> normal;
    std::vector<Real> labels(static_cast<std::size_t>(classes) * dim);
    for (Real& v : labels) v = static_cast<Real>(normal(random));
    // Exact ties: a later label equal to an earlier one must never win.
    if (classes > 2)
        for (int c = 0; c < dim; ++c) labels[(classes - 1) * dim + c] = labels[1 * dim + c];
    std::vector<Real> transposed(static_cast<std::size_t>(rows::padded_classes(classes)) * dim);
    rows::transpose_labels(labels.data(), classes, dim, transposed.data());
    constexpr int block = 8;
    std::vector<Real> points(static_cast<std::size_t>(block) * dim);
    for (int trial = 0; trial < 20; ++trial) {
        for (int s = 0; s < block; ++s)
            for (int c = 0; c < dim; ++c)
                // Some points sit on a label, some on the tied pair.
                points[s * dim + c] = s == 0 ? labels[c] : s == 1 && classes > 2 ? labels[dim + c] : static_cast<Real>(normal(random));
        std::vector<int> nearest(block), other(block);
        for (int s = 0; s < block; ++s) {
            nearest[s] = reference_nearest(points.data() + s * dim, labels, classes, dim);
            other[s] = (nearest[s] + 1 + trial % 2 * s) % classes;
        }
        for (const std::vector<int>* expected : {&nearest, &other}) {
            int want = 0;
            for (int s = 0; s < block; ++s) want += nearest[s] == (*expected)[s];
            const int vector_scan =
                rows::count_nearest_matching<Real, block, true>(points.data(), dim, transposed.data(), classes, dim, expected->data());
            const int generic_scan = rows::count_nearest_matching<Real, block, false>(points.data(), dim, transposed.data(),
                                                                                      classes, dim, expected->data());
            // One lane at a time, as in CUDA code.
            const int scalar_scan = rows::count_nearest_generic<Real, block, 1>(points.data(), dim, transposed.data(), classes,
                                                                                dim, expected->data());
            EXPECT_EQ(scalar_scan, want) << "classes " << classes << " dim " << dim;
            EXPECT_EQ(vector_scan, want) << "classes " << classes << " dim " << dim;
            EXPECT_EQ(generic_scan, want) << "classes " << classes << " dim " << dim;
        }
    }
}

TEST(NearestLabel, VectorScanCountsWhatTheScalarScanCounts) {
    std::mt19937 random(5);
    for (int classes : {1, 2, 3, 4, 5, 8, 9, 10, 16, 17, 40})
        for (int dim : {1, 3, 8, 32}) {
            expect_scans_agree<float>(classes, dim, random);
            expect_scans_agree<double>(classes, dim, random);
        }
}

} // namespace
} // namespace collapse::testing
