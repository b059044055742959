// Logarithm, sine and cosine for the Box-Muller normals of philox.hpp, built
// only from IEEE-754 correctly rounded double operations (+, -, *, /, sqrt),
// exact range reduction by bit manipulation and fixed polynomials. Every
// operation is spelled out through the helpers below, so the host (g++, with
// -ffp-contract=off from the top-level CMakeLists.txt) and the device (nvcc,
// __dadd_rn & co., which nvcc never fuses into an FMA) execute the same
// sequence of roundings and return the same bits. Device and host libm
// (std::log, ::sin, ...) do not: they round differently in the last bit, which
// is why initial states used to be made on the host only (docs/model.md,
// "Initial state and random numbers").
//
// Accuracy (tests/core/test_portable_math.cpp, against long double): log
// within 1 ulp on positive normal doubles; sin(2 pi v) and cos(2 pi v) within
// 1 ulp of the exact value for v in [0, 1).
#pragma once

#include <cstdint>
#include <cstring>

#if !defined(__CUDA_ARCH__)
#include <cmath>
#endif

#include "collapse/model/hd.hpp"

namespace collapse::portable {

// One correctly rounded operation each; never contracted with a neighbour.
COLLAPSE_HD inline double add(double a, double b) {
#if defined(__CUDA_ARCH__)
    return __dadd_rn(a, b);
#else
    return a + b;
#endif
}

COLLAPSE_HD inline double sub(double a, double b) {
#if defined(__CUDA_ARCH__)
    return __dsub_rn(a, b);
#else
    return a - b;
#endif
}

COLLAPSE_HD inline double mul(double a, double b) {
#if defined(__CUDA_ARCH__)
    return __dmul_rn(a, b);
#else
    return a * b;
#endif
}

COLLAPSE_HD inline double div(double a, double b) {
#if defined(__CUDA_ARCH__)
    return __ddiv_rn(a, b);
#else
    return a / b;
#endif
}

COLLAPSE_HD inline double sqrt(double a) {
#if defined(__CUDA_ARCH__)
    return __dsqrt_rn(a);
#else
    return std::sqrt(a);
#endif
}

COLLAPSE_HD inline std::uint64_t bits_of(double value) {
#if defined(__CUDA_ARCH__)
    return static_cast<std::uint64_t>(__double_as_longlong(value));
#else
    std::uint64_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    return bits;
#endif
}

COLLAPSE_HD inline double double_of(std::uint64_t bits) {
#if defined(__CUDA_ARCH__)
    return __longlong_as_double(static_cast<long long>(bits));
#else
    double value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
#endif
}

// Natural logarithm of a positive normal double (the only arguments
// Box-Muller gives it: (0, 1] in steps of 2^-32). Other arguments give
// unspecified results.
//
// x = 2^k m with m in [sqrt(1/2), sqrt(2)) by exponent extraction (exact),
// f = m - 1 (exact), s = f / (2 + f), and
//   log(1 + f) = 2 atanh(s) = f - (f^2/2 - s (f^2/2 + R)),
//   R = sum_{j>=1} 2 s^{2j} / (2j + 1),
// the arrangement of fdlibm's e_log.c, with the Taylor series of atanh
// (|s| <= 0.1716, so s^2 <= 0.0295 and twelve terms reach 2^-60) in place of
// its minimax polynomial. k ln 2 is added as k ln2_hi (exact: ln2_hi has 32
// significant bits) plus k ln2_lo.
COLLAPSE_HD inline double log(double x) {
    constexpr double ln2_hi = 6.93147180369123816490e-01; // 0x3fe62e42fee00000
    constexpr double ln2_lo = 1.90821492927058770002e-10; // ln 2 - ln2_hi
    constexpr double sqrt2 = 1.4142135623730951;
    constexpr std::uint64_t mantissa_mask = (std::uint64_t{1} << 52) - 1;
    const std::uint64_t bits = bits_of(x);
    int k = static_cast<int>((bits >> 52) & 0x7ff) - 1023;
    double m = double_of((bits & mantissa_mask) | (std::uint64_t{1023} << 52)); // [1, 2)
    if (m > sqrt2) {
        m = mul(m, 0.5);
        k += 1;
    }
    const double f = sub(m, 1.0);
    const double s = div(f, add(2.0, f));
    const double z = mul(s, s);
    // 2 / (2j + 1), j = 12 down to 1.
    constexpr double coefficient[12] = {0.08,
                                        0.08695652173913043,
                                        0.09523809523809523,
                                        0.10526315789473684,
                                        0.11764705882352941,
                                        0.13333333333333333,
                                        0.15384615384615385,
                                        0.18181818181818182,
                                        0.2222222222222222,
                                        0.2857142857142857,
                                        0.4,
                                        0.6666666666666666};
    double series = coefficient[0];
    for (int j = 1; j < 12; ++j) series = add(mul(series, z), coefficient[j]);
    const double r = mul(series, z);
    const double half_f_squared = mul(mul(0.5, f), f);
    const double dk = static_cast<double>(k);
    return sub(mul(dk, ln2_hi), sub(sub(half_f_squared, add(mul(s, add(half_f_squared, r)), mul(dk, ln2_lo))), f));
}

// sin(2 pi v) and cos(2 pi v) for v in [0, 1).
//
// Reduction on v itself, which is exact: t = 4 v, n = nearest integer to t,
// r = t - n in [-1/2, 1/2] (Sterbenz), so 2 pi v = n pi/2 + theta with
// theta = r pi/2 in [-pi/4, pi/4]. theta is r pio2_hi + r pio2_lo, where
// pio2_hi has 23 significant bits: for v a multiple of 2^-32 (Philox
// uniforms) r has at most 30, so r pio2_hi is exact, and the rounding error
// of theta is carried as `tail` into both series. Then Taylor series on |theta| <= pi/4 (through theta^19 for sin,
// theta^20 for cos: remainders below 2^-60) and the quadrant's symmetry.
COLLAPSE_HD inline void sincos_two_pi(double v, double& sine, double& cosine) {
    constexpr double pio2_hi = 1.570796251296997;     // 0x3ff921fb40000000
    constexpr double pio2_lo = 7.549789954891882e-08; // pi/2 - pio2_hi
    const double t = mul(v, 4.0);
    const int n = static_cast<int>(add(t, 0.5)); // t >= 0: truncation is floor
    const double r = sub(t, static_cast<double>(n));
    const double theta_hi = mul(r, pio2_hi);
    const double theta = add(theta_hi, mul(r, pio2_lo));
    const double tail = sub(mul(r, pio2_lo), sub(theta, theta_hi)); // theta's rounding error (Fast2Sum)
    const double z = mul(theta, theta);
    const double half_z = mul(0.5, z);
    const double w = sub(1.0, half_z);

    // sin theta = theta + theta z P(z), P(z) = -1/3! + z/5! - ... + z^8/19!.
    constexpr double sin_coefficient[9] = {-8.22063524662433e-18,  2.8114572543455206e-15, -7.647163731819816e-13,
                                           1.6059043836821613e-10, -2.505210838544172e-08, 2.755731922398589e-06,
                                           -0.0001984126984126984, 0.008333333333333333,   -0.16666666666666666};
    double p = sin_coefficient[0];
    for (int j = 1; j < 9; ++j) p = add(mul(p, z), sin_coefficient[j]);
    // sin(theta + tail) = sin theta + tail cos theta, cos theta ~ w.
    const double sin_theta = add(theta, add(mul(mul(theta, z), p), mul(tail, w)));

    // cos theta = 1 - z/2 + z^2 Q(z), Q(z) = 1/4! - z/6! + ... + z^8/20!;
    // 1 - z/2 is carried with its rounding error (fdlibm's k_cos.c trick).
    constexpr double cos_coefficient[9] = {4.110317623312165e-19,  -1.5619206968586225e-16, 4.779477332387385e-14,
                                           -1.1470745597729725e-11, 2.08767569878681e-09,   -2.755731922398589e-07,
                                           2.48015873015873e-05,   -0.001388888888888889,  0.041666666666666664};
    double q = cos_coefficient[0];
    for (int j = 1; j < 9; ++j) q = add(mul(q, z), cos_coefficient[j]);
    // cos(theta + tail) = cos theta - tail sin theta, sin theta ~ theta.
    const double cos_theta = add(w, add(sub(sub(1.0, w), half_z), sub(mul(mul(z, z), q), mul(theta, tail))));

    switch (n & 3) {
    case 0:
        sine = sin_theta;
        cosine = cos_theta;
        break;
    case 1:
        sine = cos_theta;
        cosine = -sin_theta;
        break;
    case 2:
        sine = -sin_theta;
        cosine = -cos_theta;
        break;
    default:
        sine = -cos_theta;
        cosine = sin_theta;
        break;
    }
}

} // namespace collapse::portable
