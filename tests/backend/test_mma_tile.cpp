// The warp-level tensor-core tile (model/mma_tile.hpp) without a device: its
// fragment layouts against entries transcribed from the PTX ISA's tables,
// cvt.rna.tf32.f32's rounding, and whole-warp products (all 32 lanes'
// fragments loaded by the kernels' own load functions from padded tiles,
// the emulated instruction, the kernels' store) against a float64 GEMM:
// 3xTF32 keeps float32 accuracy, one TF32 product does not, DMMA is exact
// to float64 round-off.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "collapse/model/mma_tile.hpp"

namespace collapse::testing {
namespace {

using mma::F64Shape;
using mma::Tf32Shape;

struct Place {
    int row, col;
};

struct LaneEntries {
    int lane;
    std::vector<Place> a, b, c; // by register; B as (k, n)
};

template <class Shape>
void expect_lane_entries(const LaneEntries& want) {
    SCOPED_TRACE("lane " + std::to_string(want.lane));
    for (int i = 0; i < Shape::a_regs; ++i) {
        EXPECT_EQ(Shape::a_row(want.lane, i), want.a[i].row) << "a" << i;
        EXPECT_EQ(Shape::a_col(want.lane, i), want.a[i].col) << "a" << i;
    }
    for (int i = 0; i < Shape::b_regs; ++i) {
        EXPECT_EQ(Shape::b_row(want.lane, i), want.b[i].row) << "b" << i;
        EXPECT_EQ(Shape::b_col(want.lane, i), want.b[i].col) << "b" << i;
    }
    for (int i = 0; i < Shape::c_regs; ++i) {
        EXPECT_EQ(Shape::c_row(want.lane, i), want.c[i].row) << "c" << i;
        EXPECT_EQ(Shape::c_col(want.lane, i), want.c[i].col) << "c" << i;
    }
}

// Every entry of each matrix is held by exactly one (lane, register).
template <class Shape>
void expect_each_entry_once() {
    std::set<std::pair<int, int>> a, b, c;
    for (int lane = 0; lane < mma::lanes_per_warp; ++lane) {
        for (int i = 0; i < Shape::a_regs; ++i) a.insert({Shape::a_row(lane, i), Shape::a_col(lane, i)});
        for (int i = 0; i < Shape::b_regs; ++i) b.insert({Shape::b_row(lane, i), Shape::b_col(lane, i)});
        for (int i = 0; i < Shape::c_regs; ++i) c.insert({Shape::c_row(lane, i), Shape::c_col(lane, i)});
    }
    EXPECT_EQ(a.size(), static_cast<std::size_t>(Shape::m * Shape::k));
    EXPECT_EQ(b.size(), static_cast<std::size_t>(Shape::k * Shape::n));
    EXPECT_EQ(c.size(), static_cast<std::size_t>(Shape::m * Shape::n));
    for (const auto& [row, col] : a) EXPECT_TRUE(row < Shape::m && col < Shape::k);
    for (const auto& [row, col] : b) EXPECT_TRUE(row < Shape::k && col < Shape::n);
    for (const auto& [row, col] : c) EXPECT_TRUE(row < Shape::m && col < Shape::n);
}

// PTX ISA, "Matrix Fragments for mma.m16n8k8" (.tf32 A and B, .f32 C/D),
// figures read for lanes 0 (groupID 0, threadID_in_group 0), 5 (1, 1), 31 (7, 3).
TEST(MmaFragmentLayout, Tf32LanesHoldThePtxIsaEntries) {
    expect_lane_entries<Tf32Shape>({0, {{0, 0}, {8, 0}, {0, 4}, {8, 4}}, {{0, 0}, {4, 0}}, {{0, 0}, {0, 1}, {8, 0}, {8, 1}}});
    expect_lane_entries<Tf32Shape>({5, {{1, 1}, {9, 1}, {1, 5}, {9, 5}}, {{1, 1}, {5, 1}}, {{1, 2}, {1, 3}, {9, 2}, {9, 3}}});
    expect_lane_entries<Tf32Shape>(
        {31, {{7, 3}, {15, 3}, {7, 7}, {15, 7}}, {{3, 7}, {7, 7}}, {{7, 6}, {7, 7}, {15, 6}, {15, 7}}});
    expect_each_entry_once<Tf32Shape>();
}

// PTX ISA, "Matrix Fragments for mma.m8n8k4 with .f64": lanes 0, 5 and 30 (7, 2).
TEST(MmaFragmentLayout, F64LanesHoldThePtxIsaEntries) {
    expect_lane_entries<F64Shape>({0, {{0, 0}}, {{0, 0}}, {{0, 0}, {0, 1}}});
    expect_lane_entries<F64Shape>({5, {{1, 1}}, {{1, 1}}, {{1, 2}, {1, 3}}});
    expect_lane_entries<F64Shape>({30, {{7, 2}}, {{2, 7}}, {{7, 4}, {7, 5}}});
    expect_each_entry_once<F64Shape>();
}

// cvt.rna.tf32.f32: nearest, ties away from zero, on the 13 dropped bits.
TEST(Tf32Rounding, RoundsToNearestWithTiesAwayFromZero) {
    const std::pair<std::uint32_t, std::uint32_t> cases[] = {
        {0x3f800000u, 0x3f800000u}, // 1 is exact
        {0x3f800fffu, 0x3f800000u}, // below the half: down
        {0x3f801000u, 0x3f802000u}, // a tie with an even last bit: away (nearest-even would stay)
        {0xbf801000u, 0xbf802000u}, // negative tie: away from zero
        {0x3f803000u, 0x3f804000u}, // a tie with an odd last bit
        {0x3f801001u, 0x3f802000u}, // above the half: up
        {0x3fffffffu, 0x40000000u}, // the carry reaches the exponent
        {0x7f7fffffu, 0x7f800000u}, // the largest float rounds to infinity
        {0xff800000u, 0xff800000u}, // -infinity stays
        {0x00001000u, 0x00002000u}, // a subnormal tie
    };
    for (const auto& [input, rounded] : cases) {
        float x;
        std::memcpy(&x, &input, sizeof x);
        EXPECT_EQ(mma::round_to_tf32(x), rounded) << std::hex << input;
    }
    EXPECT_TRUE(std::isnan(mma::float_of_bits(mma::round_to_tf32(std::numeric_limits<float>::quiet_NaN()))));
    float nan_in_low_bits;
    const std::uint32_t low_nan = 0x7f800001u;
    std::memcpy(&nan_in_low_bits, &low_nan, sizeof nan_in_low_bits);
    EXPECT_TRUE(std::isnan(mma::float_of_bits(mma::round_to_tf32(nan_in_low_bits))));
}

TEST(Tf32Rounding, TheSplitKeepsTwentyTwoBits) {
    std::mt19937 random(11);
    std::uniform_real_distribution<float> mantissa(-1.0f, 1.0f);
    double worst = 0;
    int small_nonzero = 0;
    for (int n = 0; n < 20000; ++n) {
        const float x = std::ldexp(mantissa(random), n % 40 - 20);
        if (x == 0) continue;
        const mma::Tf32Split split = mma::split_tf32(x);
        EXPECT_EQ(split.big & 0x1fffu, 0u);
        EXPECT_EQ(split.small & 0x1fffu, 0u);
        const double sum = static_cast<double>(mma::float_of_bits(split.big)) + mma::float_of_bits(split.small);
        worst = std::max(worst, std::abs(sum - x) / std::abs(x));
        small_nonzero += split.small != 0 ? 1 : 0;
    }
    EXPECT_LE(worst, std::ldexp(1.0, -22));
    EXPECT_GT(worst, std::ldexp(1.0, -26)); // the split does drop bits: the bound is not vacuous
    EXPECT_GT(small_nonzero, 19000);
}

// A product as the fused kernel computes one output block: k-steps over
// K, every lane's fragments from the padded tiles by load_a/load_b, the
// emulated instruction through `multiply`, the result stored by store_c.
// A[r][k] at a[r * a_rows + k * a_cols], B[k][n] at b[k * b_ks + n * b_ns].
template <class Shape, class Real, class Multiply>
std::vector<Real> warp_product(const Real* a, int a_rows, int a_cols, const Real* b, int b_ks, int b_ns, int k_total,
                               Multiply multiply) {
    constexpr int out_ld = Shape::n + 1;
    mma::Fragment<Real, Shape::c_regs> acc[mma::lanes_per_warp] = {};
    for (int k0 = 0; k0 < k_total; k0 += Shape::k) {
        mma::Fragment<Real, Shape::a_regs> a_frags[mma::lanes_per_warp];
        mma::Fragment<Real, Shape::b_regs> b_frags[mma::lanes_per_warp];
        for (int lane = 0; lane < mma::lanes_per_warp; ++lane) {
            a_frags[lane] = mma::load_a<Shape>(lane, a + k0 * a_cols, a_rows, a_cols);
            b_frags[lane] = mma::load_b<Shape>(lane, b + k0 * b_ks, b_ks, b_ns);
        }
        multiply(a_frags, b_frags, acc);
    }
    std::vector<Real> out(Shape::m * out_ld, std::numeric_limits<Real>::quiet_NaN());
    for (int lane = 0; lane < mma::lanes_per_warp; ++lane) mma::store_c<Shape>(lane, acc[lane], out.data(), out_ld, 1);
    return out;
}

// Each lane's raw float fragments split into TF32 big and small parts.
template <int Count, class Fragments>
void split_lanes(const mma::Fragment<float, Count>* raw, Fragments* big, Fragments* small) {
    for (int lane = 0; lane < mma::lanes_per_warp; ++lane)
        for (int i = 0; i < Count; ++i) {
            const mma::Tf32Split split = mma::split_tf32(raw[lane].reg[i]);
            big[lane].reg[i] = split.big;
            small[lane].reg[i] = split.small;
        }
}

template <bool ThreeTerms>
void tf32_multiply(const mma::Fragment<float, 4>* a, const mma::Fragment<float, 2>* b, mma::F32Accumulator* acc) {
    mma::Tf32A a_big[mma::lanes_per_warp], a_small[mma::lanes_per_warp];
    mma::Tf32B b_big[mma::lanes_per_warp], b_small[mma::lanes_per_warp];
    split_lanes(a, a_big, a_small);
    split_lanes(b, b_big, b_small);
    if (ThreeTerms) {
        mma::emulate_warp_mma(a_small, b_big, acc);
        mma::emulate_warp_mma(a_big, b_small, acc);
    }
    mma::emulate_warp_mma(a_big, b_big, acc);
}

// max |got - exact| / max sum_k |a b|: the error relative to the product's scale.
template <class Shape, class Real>
double scaled_error(const std::vector<Real>& got, const std::vector<double>& a, int a_rows, int a_cols,
                    const std::vector<double>& b, int b_ks, int b_ns, int k_total) {
    double error = 0, scale = 0;
    for (int r = 0; r < Shape::m; ++r)
        for (int n = 0; n < Shape::n; ++n) {
            double exact = 0, magnitude = 0;
            for (int k = 0; k < k_total; ++k) {
                const double term = a[r * a_rows + k * a_cols] * b[k * b_ks + n * b_ns];
                exact += term;
                magnitude += std::abs(term);
            }
            error = std::max(error, std::abs(static_cast<double>(got[r * (Shape::n + 1) + n]) - exact));
            scale = std::max(scale, magnitude);
        }
    return error / scale;
}

// The fused kernel's three orientations at d = 32 over a tile of 64 samples
// (ld = d + 1): P = X W^T (A the tile's rows, B = W read by rows), dX = R1 W
// (B = W by columns) and G = R1^T X (A the residual tile transposed, k = the samples).
struct Orientation {
    const char* name;
    int a_rows, a_cols, b_ks, b_ns, k_total;
};
constexpr int dim = 32, ld = dim + 1, samples = 64;
const Orientation orientations[] = {
    {"P = X W^T", ld, 1, 1, ld, dim}, {"dX = R1 W", ld, 1, ld, 1, dim}, {"G = R1^T X", 1, ld, ld, 1, samples}};

template <class Real>
std::vector<double> random_tile(unsigned seed) {
    std::mt19937 random(seed);
    std::normal_distribution<double> value(0.0, 1.0);
    std::vector<double> tile(samples * ld);
    for (double& entry : tile) entry = static_cast<double>(static_cast<Real>(value(random)));
    return tile;
}

TEST(WarpMmaEmulation, ThreeTf32TermsKeepFloat32AccuracyAndOneDoesNot) {
    const std::vector<double> a = random_tile<float>(1), b = random_tile<float>(2);
    const std::vector<float> a32(a.begin(), a.end()), b32(b.begin(), b.end());
    for (const Orientation& o : orientations) {
        SCOPED_TRACE(o.name);
        const auto three = warp_product<Tf32Shape>(a32.data(), o.a_rows, o.a_cols, b32.data(), o.b_ks, o.b_ns,
                                                   o.k_total, tf32_multiply<true>);
        const auto one = warp_product<Tf32Shape>(a32.data(), o.a_rows, o.a_cols, b32.data(), o.b_ks, o.b_ns,
                                                 o.k_total, tf32_multiply<false>);
        const double three_error = scaled_error<Tf32Shape>(three, a, o.a_rows, o.a_cols, b, o.b_ks, o.b_ns, o.k_total);
        const double one_error = scaled_error<Tf32Shape>(one, a, o.a_rows, o.a_cols, b, o.b_ks, o.b_ns, o.k_total);
        EXPECT_LT(three_error, 5e-7); // about 7e-8 here
        EXPECT_GT(one_error, 2e-5); // TF32 alone: 2^-11 per operand, about 1.5e-4 here
        EXPECT_GT(one_error, 50 * three_error);
    }
}

TEST(WarpMmaEmulation, DmmaIsExactToFloat64RoundOff) {
    const std::vector<double> a = random_tile<double>(3), b = random_tile<double>(4);
    for (const Orientation& o : orientations) {
        SCOPED_TRACE(o.name);
        const auto product = warp_product<F64Shape>(
            a.data(), o.a_rows, o.a_cols, b.data(), o.b_ks, o.b_ns, o.k_total,
            [](const mma::F64A* fa, const mma::F64B* fb, mma::F64Accumulator* acc) { mma::emulate_warp_mma(fa, fb, acc); });
        EXPECT_LT(scaled_error<F64Shape>(product, a, o.a_rows, o.a_cols, b, o.b_ks, o.b_ns, o.k_total), 1e-15);
    }
}

} // namespace
} // namespace collapse::testing
