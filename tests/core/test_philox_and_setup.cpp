#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "collapse/model/philox.hpp"
#include "collapse/model/setup.hpp"
#include "collapse/model/validate.hpp"

namespace collapse {
namespace {

// Known-answer vectors published with Random123 (kat_vectors, philox4x32 10 rounds).
TEST(Philox, MatchesRandom123KnownAnswers) {
    const philox::Block zero = philox::philox4x32_10(philox::Block{{0, 0, 0, 0}}, 0, 0);
    EXPECT_EQ(zero.word[0], 0x6627e8d5u);
    EXPECT_EQ(zero.word[1], 0xe169c58du);
    EXPECT_EQ(zero.word[2], 0xbc57ac4cu);
    EXPECT_EQ(zero.word[3], 0x9b00dbd8u);
    const philox::Block ones =
        philox::philox4x32_10(philox::Block{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}}, 0xffffffffu, 0xffffffffu);
    EXPECT_EQ(ones.word[0], 0x408f276du);
    EXPECT_EQ(ones.word[1], 0x41c83b0eu);
    EXPECT_EQ(ones.word[2], 0xa20bc7c6u);
    EXPECT_EQ(ones.word[3], 0x6d5451fdu);
}

TEST(Philox, NormalsHaveUnitMoments) {
    const philox::StreamGenerator generator(123, 4, philox::Stream::sample_embeddings);
    double sum = 0, sum_squares = 0;
    const int count = 200000;
    for (int e = 0; e < count; ++e) {
        const double z = generator.normal(static_cast<std::uint64_t>(e));
        sum += z;
        sum_squares += z * z;
    }
    EXPECT_NEAR(sum / count, 0.0, 0.01);
    EXPECT_NEAR(sum_squares / count, 1.0, 0.01);
}

TEST(Setup, DrawsArePureFunctionsOfSeedAndShareAcrossGrid) {
    ModelShape shape;
    const SeedDraws a = draw_seed(shape, 8, 99, 5), b = draw_seed(shape, 8, 99, 5), other = draw_seed(shape, 8, 99, 6);
    EXPECT_EQ(a.sample_normals, b.sample_normals);
    EXPECT_EQ(a.frustration_order, b.frustration_order);
    EXPECT_NE(a.sample_normals, other.sample_normals);
    // The permutation is one.
    std::vector<int> sorted = a.frustration_order;
    std::sort(sorted.begin(), sorted.end());
    for (int i = 0; i < shape.samples(); ++i) EXPECT_EQ(sorted[i], i);
    for (int i = 0; i < shape.samples(); ++i) EXPECT_NE(a.second_label[i], a.primary_label[i]);
    // A narrower head is the leading part of a wider head's draw.
    const SeedDraws narrow = draw_seed(shape, 2, 99, 5);
    EXPECT_TRUE(std::equal(narrow.head_A_normals.begin(), narrow.head_A_normals.end(), a.head_A_normals.begin()));
}

TEST(Setup, FrustratedSetsAreNested) {
    ModelShape shape;
    const SeedDraws draws = draw_seed(shape, 0, 1, 0);
    std::set<int> previous;
    for (double f : {0.0, 0.05, 0.1, 0.3, 1.0}) {
        TrajectoryParams params;
        params.frustration = f;
        const TrajectorySetup<double> setup = make_trajectory<double>(shape, params, draws);
        std::set<int> frustrated;
        for (int i = 0; i < shape.samples(); ++i)
            if (setup.second_label[i] >= 0) frustrated.insert(i);
        EXPECT_EQ(static_cast<int>(frustrated.size()), frustrated_count(f, shape.samples()));
        EXPECT_TRUE(std::includes(frustrated.begin(), frustrated.end(), previous.begin(), previous.end()));
        EXPECT_EQ(setup.pair_count, shape.samples() + static_cast<int>(frustrated.size()));
        previous = frustrated;
    }
    EXPECT_EQ(frustrated_count(0.1, 200), 20);
    EXPECT_EQ(frustrated_count(0.0025, 200), 1); // floor(0.5 + 0.5)
}

TEST(Validation, RejectsBadParametersWithTheirNames) {
    const auto expect_message = [](auto&& call, const std::string& fragment) {
        try {
            call();
            ADD_FAILURE() << "no error for " << fragment;
        } catch (const std::invalid_argument& error) {
            EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos) << error.what();
        }
    };
    ModelShape shape;
    shape.classes = 1;
    expect_message([&] { validate_shape(shape); }, "classes (K) = 1");
    shape = ModelShape{};
    shape.samples_per_class = 0;
    expect_message([&] { validate_shape(shape); }, "samples_per_class (n) = 0");
    shape = ModelShape{};
    shape.dim = 0;
    expect_message([&] { validate_shape(shape); }, "dim (d) = 0");
    TrajectoryParams params;
    params.frustration = 1.5;
    expect_message([&] { validate_trajectory(params); }, "frustration (f) = 1.5");
    params = TrajectoryParams{};
    params.frustration = -0.1;
    expect_message([&] { validate_trajectory(params); }, "frustration (f) = -0.1");
    params = TrajectoryParams{};
    params.head_dim = -1;
    expect_message([&] { validate_trajectory(params); }, "head_dim (h) = -1");
    params = TrajectoryParams{};
    params.lr = 0;
    expect_message([&] { validate_trajectory(params); }, "lr = 0");
    IntegratorConfig integrator;
    integrator.max_steps = 0;
    expect_message([&] { validate_integrator(integrator); }, "max_steps = 0");
    EXPECT_NO_THROW(validate_shape(ModelShape{}));
    EXPECT_NO_THROW(validate_trajectory(TrajectoryParams{}));
}

} // namespace
} // namespace collapse
