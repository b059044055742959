// The aggregated gradient code against (a) central finite differences of L
// and (b) a pair-by-pair transcription of SPEC §1, which also covers
// stop-gradient, where the update is not the gradient of any loss.
#include <gtest/gtest.h>

#include <cmath>

#include "collapse/model/collapse_model.hpp"
#include "reference.hpp"

namespace collapse::testing {
namespace {

struct Case {
    ModelShape shape;
    TrajectoryParams params;
};

Case make_case(ModelKind kind, int head_dim, bool stop_gradient, int dim) {
    Case c;
    c.shape.kind = kind;
    c.shape.classes = 3;
    c.shape.samples_per_class = 4;
    c.shape.dim = dim;
    c.shape.input_dim = kind == ModelKind::teacher_student ? 6 : 0;
    c.params.frustration = 0.5;
    c.params.head_dim = head_dim;
    c.params.stop_gradient = stop_gradient;
    c.params.seed_index = 4;
    c.params.init_scale = 0.8;
    return c;
}

double engine_loss(const TrajectorySetup<double>& setup, const std::vector<double>& state) {
    std::vector<double> gradient(state.size()), workspace(WorkspaceLayout(setup.dims).size);
    return evaluate(setup.problem(), state.data(), gradient.data(), workspace.data(), false).loss;
}

// SPEC §1 pair by pair: r1 = W x_i - y_k, r2 = W y_k - x_i.
std::vector<double> pairwise_gradient(const Case& c, const TrajectorySetup<double>& setup, const std::vector<double>& state,
                                      const SeedDraws& draws, double& loss) {
    const TrajectoryDims dims = setup.dims;
    const int d = dims.dim, h = dims.head_dim, p = dims.input_dim, N = dims.samples;
    const StateLayout layout(dims);
    const auto pairs = pair_list(draws, c.params.frustration);
    const double inverse_m = 1.0 / static_cast<double>(pairs.size());
    const double s = c.params.stop_gradient && h > 0 ? 1.0 : 0.0;

    std::vector<double> x(static_cast<std::size_t>(N) * d);
    for (int i = 0; i < N; ++i)
        for (int a = 0; a < d; ++a)
            x[i * d + a] = p == 0 ? state[i * d + a] : [&] {
                double sum = 0;
                for (int j = 0; j < p; ++j) sum += state[a * p + j] * setup.inputs[i * p + j];
                return sum;
            }();
    const double* y = state.data() + layout.labels;
    std::vector<double> W(static_cast<std::size_t>(d) * d, 0.0);
    for (int a = 0; a < d; ++a) {
        if (h == 0) W[a * d + a] = 1.0;
        for (int r = 0; r < h; ++r)
            for (int b = 0; b < d; ++b) W[a * d + b] += state[layout.head_B + a * h + r] * state[layout.head_A + r * d + b];
    }
    std::vector<double> dx(x.size(), 0.0), gradient(state.size(), 0.0), G(W.size(), 0.0);
    loss = 0;
    for (auto [i, k] : pairs) {
        std::vector<double> r1(d), r2(d);
        for (int a = 0; a < d; ++a) {
            double wx = 0, wy = 0;
            for (int b = 0; b < d; ++b) {
                wx += W[a * d + b] * x[i * d + b];
                wy += W[a * d + b] * y[k * d + b];
            }
            r1[a] = wx - y[k * d + a];
            r2[a] = wy - x[i * d + a];
        }
        for (int a = 0; a < d; ++a) {
            if (h == 0) { // plain model: only the first term, W = I
                loss += 0.5 * r1[a] * r1[a];
                dx[i * d + a] += r1[a];
                gradient[layout.labels + k * d + a] -= r1[a];
                continue;
            }
            loss += 0.5 * (r1[a] * r1[a] + r2[a] * r2[a]);
            double wt_r1 = 0, wt_r2 = 0;
            for (int b = 0; b < d; ++b) {
                wt_r1 += W[b * d + a] * r1[b];
                wt_r2 += W[b * d + a] * r2[b];
            }
            dx[i * d + a] += wt_r1 - (1 - s) * r2[a];
            gradient[layout.labels + k * d + a] += wt_r2 - (1 - s) * r1[a];
            for (int b = 0; b < d; ++b) G[a * d + b] += r1[a] * x[i * d + b] + r2[a] * y[k * d + b];
        }
    }
    loss *= inverse_m;
    for (auto& v : dx) v *= inverse_m;
    for (auto& v : G) v *= inverse_m;
    for (std::size_t e = layout.labels; e < layout.head_A; ++e) gradient[e] *= inverse_m;
    for (int r = 0; r < h; ++r)
        for (int b = 0; b < d; ++b)
            for (int a = 0; a < d; ++a) {
                gradient[layout.head_A + r * d + b] += state[layout.head_B + a * h + r] * G[a * d + b];
                gradient[layout.head_B + a * h + r] += G[a * d + b] * state[layout.head_A + r * d + b];
            }
    for (int i = 0; i < N; ++i)
        for (int a = 0; a < d; ++a) {
            if (p == 0) {
                gradient[i * d + a] = dx[i * d + a];
                continue;
            }
            for (int j = 0; j < p; ++j) gradient[a * p + j] += dx[i * d + a] * setup.inputs[i * p + j];
        }
    return gradient;
}

// dim 5 runs the generic code, 8 and 16 the compile-time-dimension code.
class GradientTest : public ::testing::TestWithParam<std::tuple<ModelKind, int, bool, int>> {};
// Stop-gradient updates are not the gradient of any loss, so finite
// differences only apply without it.
class LossGradientTest : public ::testing::TestWithParam<std::tuple<ModelKind, int, int>> {};

TEST_P(GradientTest, MatchesPairwiseReference) {
    const auto [kind, head_dim, stop_gradient, dim] = GetParam();
    const Case c = make_case(kind, head_dim, stop_gradient, dim);
    const SeedDraws draws = draw_seed(c.shape, head_dim, 11, c.params.seed_index);
    const TrajectorySetup<double> setup = make_trajectory<double>(c.shape, c.params, draws);
    const std::vector<double>& state = setup.initial_state;
    std::vector<double> gradient(state.size()), workspace(WorkspaceLayout(setup.dims).size);
    const double loss = evaluate(setup.problem(), state.data(), gradient.data(), workspace.data(), false).loss;
    double reference_loss = 0;
    const std::vector<double> reference = pairwise_gradient(c, setup, state, draws, reference_loss);
    EXPECT_NEAR(loss, reference_loss, 1e-12 * std::abs(reference_loss));
    for (std::size_t e = 0; e < state.size(); ++e)
        EXPECT_NEAR(gradient[e], reference[e], 1e-12 * (1 + std::abs(reference[e]))) << "element " << e;
}

TEST_P(LossGradientTest, MatchesCentralFiniteDifferences) {
    const auto [kind, head_dim, dim] = GetParam();
    const Case c = make_case(kind, head_dim, false, dim);
    const SeedDraws draws = draw_seed(c.shape, head_dim, 11, c.params.seed_index);
    const TrajectorySetup<double> setup = make_trajectory<double>(c.shape, c.params, draws);
    std::vector<double> state = setup.initial_state;
    std::vector<double> gradient(state.size()), workspace(WorkspaceLayout(setup.dims).size);
    evaluate(setup.problem(), state.data(), gradient.data(), workspace.data(), false);
    for (std::size_t e = 0; e < state.size(); ++e) {
        const double original = state[e], step = 1e-5 * std::max(1.0, std::abs(original));
        state[e] = original + step;
        const double up = engine_loss(setup, state);
        state[e] = original - step;
        const double down = engine_loss(setup, state);
        state[e] = original;
        const double numeric = (up - down) / (2 * step);
        const double relative = std::abs(gradient[e] - numeric) / std::max(std::abs(numeric), 1e-3);
        EXPECT_LT(relative, 1e-6) << "element " << e << " analytic " << gradient[e] << " numeric " << numeric;
    }
}

INSTANTIATE_TEST_SUITE_P(Variants, GradientTest,
                         ::testing::Combine(::testing::Values(ModelKind::embedding, ModelKind::teacher_student),
                                            ::testing::Values(0, 2, 5), ::testing::Bool(), ::testing::Values(5, 8, 16)));
INSTANTIATE_TEST_SUITE_P(Variants, LossGradientTest,
                         ::testing::Combine(::testing::Values(ModelKind::embedding, ModelKind::teacher_student),
                                            ::testing::Values(0, 2, 5), ::testing::Values(5, 8)));

} // namespace
} // namespace collapse::testing
