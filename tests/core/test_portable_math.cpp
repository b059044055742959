// The portable log / sin / cos behind the Box-Muller normals
// (include/collapse/model/portable_math.hpp): accuracy against long double
// and the C library, edge cases, and the moments of the normals they give.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "collapse/model/philox.hpp"
#include "collapse/model/portable_math.hpp"

namespace collapse {
namespace {

constexpr bool extended_long_double = std::numeric_limits<long double>::digits >= 64;

// |got - exact| in units of the last place of the double nearest `exact`.
double ulp_error(double got, long double exact) {
    const double nearest = static_cast<double>(exact);
    if (nearest == 0) return got == 0 ? 0.0 : std::numeric_limits<double>::infinity();
    const double magnitude = std::fabs(nearest);
    const double ulp = std::nextafter(magnitude, std::numeric_limits<double>::infinity()) - magnitude;
    return static_cast<double>(std::fabs(static_cast<long double>(got) - exact) / ulp);
}

double ulp_difference(double a, double b) { return ulp_error(a, static_cast<long double>(b)); }

// The Box-Muller radius argument: (w + 1) 2^-32, w a 32-bit word.
double open_uniform(std::uint32_t word) { return (static_cast<double>(word) + 1.0) * 0x1p-32; }

TEST(PortableMath, LogIsWithinOneUlp) {
    if (!extended_long_double) GTEST_SKIP() << "long double is not wider than double here";
    std::mt19937_64 random(7);
    double worst = 0, worst_against_libm = 0;
    const auto check = [&](double x) {
        const double got = portable::log(x);
        worst = std::max(worst, ulp_error(got, logl(static_cast<long double>(x))));
        if (x != 1.0) worst_against_libm = std::max(worst_against_libm, ulp_difference(got, std::log(x)));
    };
    // Every kind of Box-Muller argument: random words, the ends, near 1.
    for (int i = 0; i < 1000000; ++i) check(open_uniform(static_cast<std::uint32_t>(random())));
    for (std::uint32_t w = 0; w < 5000; ++w) {
        check(open_uniform(w));
        check(open_uniform(0xffffffffu - w));
        check(1.0 - static_cast<double>(w + 1) * 0x1p-53);
        check(1.0 + static_cast<double>(w + 1) * 0x1p-52);
    }
    // Near sqrt(2) and sqrt(1/2), where the mantissa is folded.
    for (int i = -2000; i <= 2000; ++i) {
        check(1.4142135623730951 + i * 0x1p-52);
        check(0.70710678118654757 + i * 0x1p-53);
    }
    // The whole normal range.
    std::uniform_real_distribution<double> mantissa(1.0, 2.0);
    for (int i = 0; i < 200000; ++i) check(std::ldexp(mantissa(random), static_cast<int>(random() % 2040) - 1020));
    for (double x : {std::numeric_limits<double>::min(), std::numeric_limits<double>::max(), 0x1p-32, 0.5, 2.0, 10.0})
        check(x);
    EXPECT_LE(worst, 1.0);
    EXPECT_LE(worst_against_libm, 2.0);
    EXPECT_EQ(portable::log(1.0), 0.0);
    EXPECT_EQ(portable::log(2.0), 0.6931471805599453);
    std::printf("portable::log: worst %.3f ulp (exact), %.3f ulp from std::log\n", worst, worst_against_libm);
}

// Reference sin / cos of 2 pi v in long double after the same exact
// reduction (v -> quadrant n and r = 4v - n), so a reference error in
// 2 pi v cannot hide or fake an error near the zeros.
void reference_sincos(double v, long double& sine, long double& cosine) {
    constexpr long double half_pi = 1.570796326794896619231321691639751442L;
    const double t = 4 * v;
    const int n = static_cast<int>(t + 0.5);
    const long double theta = (static_cast<long double>(t) - n) * half_pi;
    const long double s = sinl(theta), c = cosl(theta);
    switch (n & 3) {
    case 0: sine = s, cosine = c; break;
    case 1: sine = c, cosine = -s; break;
    case 2: sine = -s, cosine = -c; break;
    default: sine = -c, cosine = s; break;
    }
}

TEST(PortableMath, SinCosOfTwoPiVAreWithinOneUlp) {
    if (!extended_long_double) GTEST_SKIP() << "long double is not wider than double here";
    std::mt19937_64 random(11);
    double worst_sin = 0, worst_cos = 0, worst_libm = 0;
    const auto check = [&](std::uint32_t word) {
        const double v = static_cast<double>(word) * 0x1p-32;
        double sine, cosine;
        portable::sincos_two_pi(v, sine, cosine);
        long double exact_sine, exact_cosine;
        reference_sincos(v, exact_sine, exact_cosine);
        worst_sin = std::max(worst_sin, ulp_error(sine, exact_sine));
        worst_cos = std::max(worst_cos, ulp_error(cosine, exact_cosine));
        // Against the C library on the rounded angle: absolute, since the
        // rounding of 2 pi v itself is up to 4.4e-16.
        const double angle = 6.283185307179586 * v;
        worst_libm = std::max({worst_libm, std::fabs(sine - std::sin(angle)), std::fabs(cosine - std::cos(angle))});
    };
    for (int i = 0; i < 1000000; ++i) check(static_cast<std::uint32_t>(random()));
    // Around every octant boundary (quadrant edges and the +-pi/4 folds) and the ends.
    for (std::uint32_t octant = 0; octant < 8; ++octant)
        for (std::uint32_t d = 0; d < 2000; ++d) {
            check(octant * 0x20000000u + d);
            check(octant * 0x20000000u - d - 1);
        }
    EXPECT_LE(worst_sin, 1.0);
    EXPECT_LE(worst_cos, 1.0);
    EXPECT_LE(worst_libm, 1e-15);
    // Exact values at the quadrant points.
    double sine, cosine;
    portable::sincos_two_pi(0.0, sine, cosine);
    EXPECT_EQ(sine, 0.0);
    EXPECT_EQ(cosine, 1.0);
    portable::sincos_two_pi(0.25, sine, cosine);
    EXPECT_EQ(sine, 1.0);
    EXPECT_EQ(cosine, 0.0);
    portable::sincos_two_pi(0.5, sine, cosine);
    EXPECT_EQ(cosine, -1.0);
    portable::sincos_two_pi(0.75, sine, cosine);
    EXPECT_EQ(sine, -1.0);
    std::printf("portable::sincos_two_pi: worst sin %.3f, cos %.3f ulp (exact); %.3g from std::sin/cos\n", worst_sin,
                worst_cos, worst_libm);
}

TEST(PortableMath, NormalsHaveStandardMomentsAndAreFinite) {
    const philox::StreamGenerator generator(20260401, 3, philox::Stream::sample_embeddings);
    const int count = 1000000;
    double sum = 0, sum_squares = 0, sum_cubes = 0, sum_fourth = 0;
    int beyond_two = 0;
    for (int e = 0; e < count; ++e) {
        const double z = generator.normal(static_cast<std::uint64_t>(e));
        ASSERT_TRUE(std::isfinite(z));
        sum += z;
        sum_squares += z * z;
        sum_cubes += z * z * z;
        sum_fourth += z * z * z * z;
        beyond_two += std::fabs(z) > 2.0;
    }
    // Standard errors at 1e6 draws: mean 0.001, variance 0.0014, skewness 0.0024, kurtosis 0.005.
    EXPECT_NEAR(sum / count, 0.0, 0.005);
    EXPECT_NEAR(sum_squares / count, 1.0, 0.007);
    EXPECT_NEAR(sum_cubes / count, 0.0, 0.012);
    EXPECT_NEAR(sum_fourth / count, 3.0, 0.05);
    EXPECT_NEAR(static_cast<double>(beyond_two) / count, 0.0455, 0.001); // P(|z| > 2)
}

// The largest radius (word 0: u = 2^-32) and the zero radius (u = 1).
TEST(PortableMath, BoxMullerExtremes) {
    const double largest = portable::sqrt(portable::mul(-2.0, portable::log(0x1p-32)));
    EXPECT_NEAR(largest, std::sqrt(64 * std::log(2.0)), 1e-15);
    EXPECT_EQ(portable::log(open_uniform(0xffffffffu)), 0.0);
}

// A few normals pinned bit for bit: any change to the rounding sequence (a
// reordered operation, a contracted multiply-add) changes every initial
// state and must be a deliberate, documented format change (docs/model.md).
TEST(PortableMath, NormalsArePinned) {
    const philox::StreamGenerator generator(1, 0, philox::Stream::sample_embeddings);
    double first[4];
    for (int e = 0; e < 4; ++e) first[e] = generator.normal(static_cast<std::uint64_t>(e));
    const double expected[4] = {0x1.8587c51b68ab7p-2, -0x1.2f6378980fee6p-2, -0x1.fe6e17ec1c90bp-3, -0x1.00fb7a65920cp+0};
    for (int e = 0; e < 4; ++e) EXPECT_EQ(first[e], expected[e]) << "element " << e;
}

} // namespace
} // namespace collapse
