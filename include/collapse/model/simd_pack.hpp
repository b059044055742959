// A few lanes of Real handled as one value, so the model's inner loops say
// "this row times that scalar, added here" once and the compiler emits one
// vector instruction for it. On an x86 host compiled by GCC or clang a Pack is
// a native vector (SSE, AVX or AVX-512, whatever the build targets); in CUDA
// code, and on other hosts, it is one scalar, and the same loops run lane by
// lane.
//
// Every operation is lane-wise, and a multiply-add is fused exactly when the
// target has FMA (always on a GPU). So a result never depends on the pack
// width, the block size or the unrolling: the scalar path and any vector path
// give the same bits (tests/core/test_row_kernels.cpp checks it). Reductions
// across lanes are never done inside a pack; the callers sum lanes in a fixed
// order themselves.
#pragma once

#include <cmath>
#include <cstring>

#include "collapse/model/hd.hpp"

#if !defined(__CUDACC__) && (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
// GCC 12 reports its own intrinsics' _mm*_undefined_*() as maybe-uninitialized (PR105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#define COLLAPSE_X86_PACKS 1
#endif

// Full unrolling of loops with a compile-time trip count: it is what lets the
// compiler keep a block of accumulators in registers.
#if defined(__CUDA_ARCH__)
#define COLLAPSE_UNROLL _Pragma("unroll")
#elif defined(__CUDACC__)
#define COLLAPSE_UNROLL
#elif defined(__clang__)
#define COLLAPSE_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define COLLAPSE_UNROLL _Pragma("GCC unroll 64")
#else
#define COLLAPSE_UNROLL
#endif

// Keeps a loop rolled where full unrolling would let the compiler schedule
// the block's independent chains one after another instead of interleaved.
#if defined(__CUDA_ARCH__)
#define COLLAPSE_NO_UNROLL _Pragma("unroll 1")
#elif defined(__CUDACC__)
#define COLLAPSE_NO_UNROLL
#elif defined(__clang__)
#define COLLAPSE_NO_UNROLL _Pragma("nounroll")
#elif defined(__GNUC__)
#define COLLAPSE_NO_UNROLL _Pragma("GCC unroll 1")
#else
#define COLLAPSE_NO_UNROLL
#endif

#if defined(__CUDACC__)
#define COLLAPSE_INLINE __forceinline__
#elif defined(__GNUC__) || defined(__clang__)
#define COLLAPSE_INLINE inline __attribute__((always_inline))
#else
#define COLLAPSE_INLINE inline
#endif

namespace collapse::simd {

// Whether multiply_add rounds once. Every path of one build agrees on it.
#if defined(__CUDA_ARCH__) || defined(__FMA__)
inline constexpr bool fused_multiply_add = true;
#else
inline constexpr bool fused_multiply_add = false;
#endif

// a * b + c, fused when the target has FMA. The project compiles with
// -ffp-contract=off, so the unfused branch is never fused behind our back.
template <class Real>
COLLAPSE_HD COLLAPSE_INLINE Real multiply_add(Real a, Real b, Real c) {
#if defined(__CUDA_ARCH__)
    return fma(a, b, c);
#elif defined(__FMA__) && (defined(__GNUC__) || defined(__clang__))
    if constexpr (sizeof(Real) == sizeof(float)) return __builtin_fmaf(a, b, c);
    else return __builtin_fma(a, b, c);
#else
    return a * b + c;
#endif
}

// Widest vector register of the build target, in bytes; 0 = no packs (scalar).
#if defined(COLLAPSE_X86_PACKS) && defined(__AVX512F__) && defined(__FMA__)
inline constexpr int vector_bytes = 64;
inline constexpr int vector_registers = 32;
#elif defined(COLLAPSE_X86_PACKS) && defined(__AVX__)
inline constexpr int vector_bytes = 32;
inline constexpr int vector_registers = 16;
#elif defined(COLLAPSE_X86_PACKS) && defined(__SSE2__)
inline constexpr int vector_bytes = 16;
inline constexpr int vector_registers = 16;
#else
inline constexpr int vector_bytes = 0;
inline constexpr int vector_registers = 16;
#endif

// Lanes of Real in the widest native vector (1 = scalar).
template <class Real>
inline constexpr int native_lanes = vector_bytes == 0 ? 1 : vector_bytes / static_cast<int>(sizeof(Real));

// Lanes per pack for rows of `dim` values: the native width, or fewer when a
// row is shorter; 1 for a dimension only known at run time (dim = 0).
template <class Real, int Dim>
inline constexpr int row_lanes = Dim <= 0 ? 1 : (Dim < native_lanes<Real> ? Dim : native_lanes<Real>);

template <class Real, int Lanes>
struct Pack {
    static_assert(Lanes == 1, "vector packs exist only on x86 hosts");
    Real value;
    COLLAPSE_HD static COLLAPSE_INLINE Pack load(const Real* from) { return {*from}; }
    COLLAPSE_HD static COLLAPSE_INLINE Pack broadcast(Real v) { return {v}; }
    COLLAPSE_HD COLLAPSE_INLINE void store(Real* to) const { *to = value; }
    COLLAPSE_HD COLLAPSE_INLINE Real lane(int) const { return value; }
    COLLAPSE_HD friend COLLAPSE_INLINE Pack operator+(Pack a, Pack b) { return {a.value + b.value}; }
    COLLAPSE_HD friend COLLAPSE_INLINE Pack operator-(Pack a, Pack b) { return {a.value - b.value}; }
    COLLAPSE_HD friend COLLAPSE_INLINE Pack operator*(Pack a, Pack b) { return {a.value * b.value}; }
    COLLAPSE_HD friend COLLAPSE_INLINE Pack multiply_add(Pack a, Pack b, Pack c) {
        return {simd::multiply_add(a.value, b.value, c.value)};
    }
};

#if defined(COLLAPSE_X86_PACKS)
// A GCC/clang vector of Lanes x Real; +, -, * are lane-wise by the language.
template <class Real, int Lanes>
    requires(Lanes > 1)
struct Pack<Real, Lanes> {
    typedef Real Native __attribute__((vector_size(sizeof(Real) * Lanes)));
    Native value;
    static COLLAPSE_INLINE Pack load(const Real* from) {
        Pack p;
        std::memcpy(&p.value, from, sizeof(Native)); // unaligned load
        return p;
    }
    static COLLAPSE_INLINE Pack broadcast(Real v) {
        // Spelled with intrinsics: GCC turns a lane-by-lane fill into masked inserts.
        constexpr int bytes = static_cast<int>(sizeof(Native));
        constexpr bool single = sizeof(Real) == sizeof(float);
#if defined(__AVX512F__)
        if constexpr (bytes == 64 && single) return {(Native)_mm512_set1_ps(static_cast<float>(v))};
        if constexpr (bytes == 64 && !single) return {(Native)_mm512_set1_pd(static_cast<double>(v))};
#endif
#if defined(__AVX__)
        if constexpr (bytes == 32 && single) return {(Native)_mm256_set1_ps(static_cast<float>(v))};
        if constexpr (bytes == 32 && !single) return {(Native)_mm256_set1_pd(static_cast<double>(v))};
#endif
        if constexpr (bytes == 16 && single) return {(Native)_mm_set1_ps(static_cast<float>(v))};
        if constexpr (bytes == 16 && !single) return {(Native)_mm_set1_pd(static_cast<double>(v))};
        Pack p;
        for (int l = 0; l < Lanes; ++l) p.value[l] = v;
        return p;
    }
    COLLAPSE_INLINE void store(Real* to) const { std::memcpy(to, &value, sizeof(Native)); }
    COLLAPSE_INLINE Real lane(int l) const { return value[l]; }
    friend COLLAPSE_INLINE Pack operator+(Pack a, Pack b) { return {a.value + b.value}; }
    friend COLLAPSE_INLINE Pack operator-(Pack a, Pack b) { return {a.value - b.value}; }
    friend COLLAPSE_INLINE Pack operator*(Pack a, Pack b) { return {a.value * b.value}; }
    friend COLLAPSE_INLINE Pack multiply_add(Pack a, Pack b, Pack c) {
#if defined(__FMA__)
        constexpr int bytes = static_cast<int>(sizeof(Native));
        constexpr bool single = sizeof(Real) == sizeof(float);
#if defined(__AVX512F__)
        if constexpr (bytes == 64 && single)
            return {(Native)_mm512_fmadd_ps((__m512)a.value, (__m512)b.value, (__m512)c.value)};
        if constexpr (bytes == 64 && !single)
            return {(Native)_mm512_fmadd_pd((__m512d)a.value, (__m512d)b.value, (__m512d)c.value)};
#endif
        if constexpr (bytes == 32 && single)
            return {(Native)_mm256_fmadd_ps((__m256)a.value, (__m256)b.value, (__m256)c.value)};
        if constexpr (bytes == 32 && !single)
            return {(Native)_mm256_fmadd_pd((__m256d)a.value, (__m256d)b.value, (__m256d)c.value)};
        if constexpr (bytes == 16 && single)
            return {(Native)_mm_fmadd_ps((__m128)a.value, (__m128)b.value, (__m128)c.value)};
        if constexpr (bytes == 16 && !single)
            return {(Native)_mm_fmadd_pd((__m128d)a.value, (__m128d)b.value, (__m128d)c.value)};
        // Any other size (not used by the kernels): lane by lane, still fused.
        Pack out;
        for (int l = 0; l < Lanes; ++l) out.value[l] = simd::multiply_add(a.value[l], b.value[l], c.value[l]);
        return out;
#else
        return {a.value * b.value + c.value};
#endif
    }
};
#endif

// `body(i)` for i < count: fully unrolled when count is a compile-time
// constant (Count > 0), a plain loop over `runtime_count` otherwise.
template <int Count, class Body>
COLLAPSE_HD COLLAPSE_INLINE void repeat(int runtime_count, Body&& body) {
    if constexpr (Count > 0) {
        COLLAPSE_UNROLL
        for (int i = 0; i < Count; ++i) body(i);
    } else {
        for (int i = 0; i < runtime_count; ++i) body(i);
    }
}

} // namespace collapse::simd
