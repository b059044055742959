// The warp-level tensor-core tile (docs/cuda-backend.md, "Tensor cores"): one
// abstraction with a device implementation (inline PTX mma.sync, sm_80+) and
// a host emulation that follows the PTX ISA's fragment layouts exactly, so
// that the kernels' fragment loads and stores (shared by both) are checked on
// a machine without a GPU.
//
//   float32: mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 with the
//            3xTF32 split (a = a_big + a_small, each rounded to TF32 as
//            cvt.rna.tf32.f32 does; a b ~ a_small b_big + a_big b_small +
//            a_big b_big, accumulated in float32): float32 accuracy, not TF32's.
//   float64: mma.sync.aligned.m8n8k4.row.col.f64.f64.f64.f64 (DMMA).
//
// A warp's lanes each hold a fragment (a few registers) of A, B and C/D; the
// *_row/*_col functions below are the PTX ISA tables ("Matrix Fragments for
// mma.m16n8k8", .tf32 A/B and .f32 C/D; "Matrix Fragments for mma.m8n8k4
// with .f64"). The loads read matrix element (r, c) at
// base[r * row_stride + c * col_stride], so one function reads a padded
// shared tile row-major or transposed.
//
// Teams (model/team.hpp) that run these tiles on the host provide
// mma(c, a, b), a warp-collective: the host emulation assembles the 32 lanes'
// fragments (tests/backend/kernel_emulation.hpp). On the device warp_mma is
// the instruction itself; every lane of the warp must reach it (warp-uniform
// loops around it).
#pragma once

#include <cstdint>
#include <cstring>

#if !defined(__CUDA_ARCH__)
#include <cmath>
#endif

#include "collapse/model/hd.hpp"

namespace collapse::mma {

inline constexpr int lanes_per_warp = 32;

template <class T, int Count>
struct Fragment {
    T reg[Count];
};

// groupID and threadID_in_group of the PTX ISA's fragment tables.
COLLAPSE_HD constexpr int group_of(int lane) { return lane >> 2; }
COLLAPSE_HD constexpr int thread_in_group(int lane) { return lane & 3; }

// m16n8k8, .tf32 A (row) and B (col), .f32 C/D.
struct Tf32Shape {
    static constexpr int m = 16, n = 8, k = 8;
    static constexpr int a_regs = 4, b_regs = 2, c_regs = 4;
    COLLAPSE_HD static constexpr int a_row(int lane, int i) { return group_of(lane) + ((i & 1) != 0 ? 8 : 0); }
    COLLAPSE_HD static constexpr int a_col(int lane, int i) { return thread_in_group(lane) + ((i & 2) != 0 ? 4 : 0); }
    COLLAPSE_HD static constexpr int b_row(int lane, int i) { return thread_in_group(lane) + (i != 0 ? 4 : 0); }
    COLLAPSE_HD static constexpr int b_col(int lane, int) { return group_of(lane); }
    COLLAPSE_HD static constexpr int c_row(int lane, int i) { return group_of(lane) + ((i & 2) != 0 ? 8 : 0); }
    COLLAPSE_HD static constexpr int c_col(int lane, int i) { return thread_in_group(lane) * 2 + (i & 1); }
};

// m8n8k4, .f64 A, B, C/D.
struct F64Shape {
    static constexpr int m = 8, n = 8, k = 4;
    static constexpr int a_regs = 1, b_regs = 1, c_regs = 2;
    COLLAPSE_HD static constexpr int a_row(int lane, int) { return group_of(lane); }
    COLLAPSE_HD static constexpr int a_col(int lane, int) { return thread_in_group(lane); }
    COLLAPSE_HD static constexpr int b_row(int lane, int) { return thread_in_group(lane); }
    COLLAPSE_HD static constexpr int b_col(int lane, int) { return group_of(lane); }
    COLLAPSE_HD static constexpr int c_row(int lane, int) { return group_of(lane); }
    COLLAPSE_HD static constexpr int c_col(int lane, int i) { return thread_in_group(lane) * 2 + i; }
};

using Tf32A = Fragment<std::uint32_t, 4>;
using Tf32B = Fragment<std::uint32_t, 2>;
using F32Accumulator = Fragment<float, 4>;
using F64A = Fragment<double, 1>;
using F64B = Fragment<double, 1>;
using F64Accumulator = Fragment<double, 2>;

// ---- the per-lane loads and stores, shared by the device and the host ----

template <class Shape, class Real>
COLLAPSE_HD inline Fragment<Real, Shape::a_regs> load_a(int lane, const Real* base, int row_stride, int col_stride) {
    Fragment<Real, Shape::a_regs> a;
    for (int i = 0; i < Shape::a_regs; ++i)
        a.reg[i] = base[Shape::a_row(lane, i) * row_stride + Shape::a_col(lane, i) * col_stride];
    return a;
}

// B is k x n: element (k, n) at base[k * k_stride + n * n_stride].
template <class Shape, class Real>
COLLAPSE_HD inline Fragment<Real, Shape::b_regs> load_b(int lane, const Real* base, int k_stride, int n_stride) {
    Fragment<Real, Shape::b_regs> b;
    for (int i = 0; i < Shape::b_regs; ++i)
        b.reg[i] = base[Shape::b_row(lane, i) * k_stride + Shape::b_col(lane, i) * n_stride];
    return b;
}

template <class Shape, class Real>
COLLAPSE_HD inline Fragment<Real, Shape::c_regs> load_c(int lane, const Real* base, int row_stride, int col_stride) {
    Fragment<Real, Shape::c_regs> c;
    for (int i = 0; i < Shape::c_regs; ++i)
        c.reg[i] = base[Shape::c_row(lane, i) * row_stride + Shape::c_col(lane, i) * col_stride];
    return c;
}

template <class Shape, class Real>
COLLAPSE_HD inline void store_c(int lane, const Fragment<Real, Shape::c_regs>& c, Real* base, int row_stride,
                                int col_stride) {
    for (int i = 0; i < Shape::c_regs; ++i)
        base[Shape::c_row(lane, i) * row_stride + Shape::c_col(lane, i) * col_stride] = c.reg[i];
}

// ---- TF32 ----

COLLAPSE_HD inline float float_of_bits(std::uint32_t bits) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(bits);
#else
    float value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
#endif
}

// What cvt.rna.tf32.f32 returns: x rounded to TF32's 10 stored mantissa bits,
// to nearest with ties away from zero, in a .b32 whose 13 low bits are zero.
// Sign-magnitude makes that "add half of the dropped range, then truncate";
// a carry into the exponent is the correct rounding up (to infinity past the
// largest float). NaN stays NaN (truncation alone could make it infinity).
COLLAPSE_HD inline std::uint32_t round_to_tf32(float x) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    std::uint32_t rounded;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(rounded) : "f"(x));
    return rounded;
#else
    std::uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu) != 0) return 0x7fffffffu;
    return (bits + 0x1000u) & 0xffffe000u;
#endif
}

// The value the tensor core multiplies for a .tf32 register: it reads only
// the sign, the exponent and the 10 high mantissa bits.
COLLAPSE_HD inline float tf32_value(std::uint32_t bits) { return float_of_bits(bits & 0xffffe000u); }

// x ~ big + small, both TF32 (11 significant bits each). x - big is exact in
// float32 (at most x's 13 low bits), and small rounds it to 11 bits, so
// big + small is x within 2^-22 relative: float32's 2^-24, nearly.
struct Tf32Split {
    std::uint32_t big, small;
};
COLLAPSE_HD inline Tf32Split split_tf32(float x) {
    const std::uint32_t big = round_to_tf32(x);
    return Tf32Split{big, round_to_tf32(x - float_of_bits(big))};
}

// ---- the instruction (device) ----

#if defined(__CUDACC__)
__device__ inline void mma_sync(F32Accumulator& c, const Tf32A& a, const Tf32B& b) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c.reg[0]), "+f"(c.reg[1]), "+f"(c.reg[2]), "+f"(c.reg[3])
                 : "r"(a.reg[0]), "r"(a.reg[1]), "r"(a.reg[2]), "r"(a.reg[3]), "r"(b.reg[0]), "r"(b.reg[1]));
#else
    (void)c, (void)a, (void)b;
    __trap(); // the plan takes the tensor path only on compute capability 8.0 and up
#endif
}

__device__ inline void mma_sync(F64Accumulator& c, const F64A& a, const F64B& b) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m8n8k4.row.col.f64.f64.f64.f64 {%0,%1}, {%2}, {%3}, {%0,%1};\n"
                 : "+d"(c.reg[0]), "+d"(c.reg[1])
                 : "d"(a.reg[0]), "d"(b.reg[0]));
#else
    (void)c, (void)a, (void)b;
    __trap();
#endif
}
#endif

// ---- the host emulation ----
//
// What the instruction leaves in lane `lane`'s C/D registers, given every
// lane's A and B fragments: the fragments are placed by the PTX tables into
// A (m x k) and B (k x n) (assemble_operands), and lane_result computes this
// lane's entries of D (each depends on its own entry of C alone).
// TF32: the products of TF32 values are exact in double; the emulation adds
// them and C exactly (in double, k = 8 terms) and rounds once to float32.
// The hardware's adder is not specified to that level (it may truncate while
// aligning), so device and emulation can differ in the last bit: the parity
// tolerances, not bit-identity, relate them.
// float64: one fma per k, in k order, rounded to nearest.
#if !defined(__CUDA_ARCH__)
// A and B of one warp's mma, placed by the PTX tables from all lanes' fragments.
template <class Shape>
struct WarpOperands {
    double a[Shape::m][Shape::k];
    double b[Shape::k][Shape::n];
};

inline void assemble_operands(const Tf32A* a, const Tf32B* b, WarpOperands<Tf32Shape>& operands) {
    using S = Tf32Shape;
    for (int l = 0; l < lanes_per_warp; ++l) {
        for (int i = 0; i < S::a_regs; ++i) operands.a[S::a_row(l, i)][S::a_col(l, i)] = tf32_value(a[l].reg[i]);
        for (int i = 0; i < S::b_regs; ++i) operands.b[S::b_row(l, i)][S::b_col(l, i)] = tf32_value(b[l].reg[i]);
    }
}

inline void assemble_operands(const F64A* a, const F64B* b, WarpOperands<F64Shape>& operands) {
    using S = F64Shape;
    for (int l = 0; l < lanes_per_warp; ++l) {
        operands.a[S::a_row(l, 0)][S::a_col(l, 0)] = a[l].reg[0];
        operands.b[S::b_row(l, 0)][S::b_col(l, 0)] = b[l].reg[0];
    }
}

inline F32Accumulator lane_result(int lane, const WarpOperands<Tf32Shape>& operands, const F32Accumulator& c) {
    using S = Tf32Shape;
    F32Accumulator d;
    for (int i = 0; i < S::c_regs; ++i) {
        const int row = S::c_row(lane, i), col = S::c_col(lane, i);
        double sum = c.reg[i];
        for (int k = 0; k < S::k; ++k) sum += operands.a[row][k] * operands.b[k][col];
        d.reg[i] = static_cast<float>(sum);
    }
    return d;
}

inline F64Accumulator lane_result(int lane, const WarpOperands<F64Shape>& operands, const F64Accumulator& c) {
    using S = F64Shape;
    F64Accumulator d;
    for (int i = 0; i < S::c_regs; ++i) {
        const int row = S::c_row(lane, i), col = S::c_col(lane, i);
        double sum = c.reg[i];
        for (int k = 0; k < S::k; ++k) sum = std::fma(operands.a[row][k], operands.b[k][col], sum);
        d.reg[i] = sum;
    }
    return d;
}

template <class A>
struct ShapeOfOperand;
template <>
struct ShapeOfOperand<Tf32A> {
    using type = Tf32Shape;
};
template <>
struct ShapeOfOperand<F64A> {
    using type = F64Shape;
};

// The whole warp's mma: c[lane] = A B + c[lane] for every lane.
template <class A, class B, class C>
inline void emulate_warp_mma(const A* a, const B* b, C* c) {
    WarpOperands<typename ShapeOfOperand<A>::type> operands;
    assemble_operands(a, b, operands);
    for (int lane = 0; lane < lanes_per_warp; ++lane) c[lane] = lane_result(lane, operands, c[lane]);
}
#endif

// The warp-collective mma: on the device the instruction, on the host the team's emulation.
template <class Team, class C, class A, class B>
COLLAPSE_HD inline void warp_mma(const Team& team, C& c, const A& a, const B& b) {
#if defined(__CUDA_ARCH__)
    (void)team;
    mma_sync(c, a, b);
#else
    team.mma(c, a, b);
#endif
}

// ---- one tile per precision: what the fused kernel's products use ----

template <class Real>
struct WarpTile;

// float32: 3xTF32. The two small cross terms go first, so that they are
// added while the accumulator is still small; a_small b_small (2^-22
// relative) is dropped.
template <>
struct WarpTile<float> {
    using Shape = Tf32Shape;
    using Accumulator = F32Accumulator;
    template <class Team>
    COLLAPSE_HD static void multiply_accumulate(const Team& team, Accumulator& c, const Fragment<float, 4>& a,
                                                const Fragment<float, 2>& b) {
        Tf32A a_big, a_small;
        Tf32B b_big, b_small;
        for (int i = 0; i < 4; ++i) {
            const Tf32Split split = split_tf32(a.reg[i]);
            a_big.reg[i] = split.big;
            a_small.reg[i] = split.small;
        }
        for (int i = 0; i < 2; ++i) {
            const Tf32Split split = split_tf32(b.reg[i]);
            b_big.reg[i] = split.big;
            b_small.reg[i] = split.small;
        }
        warp_mma(team, c, a_small, b_big);
        warp_mma(team, c, a_big, b_small);
        warp_mma(team, c, a_big, b_big);
    }
};

template <>
struct WarpTile<double> {
    using Shape = F64Shape;
    using Accumulator = F64Accumulator;
    template <class Team>
    COLLAPSE_HD static void multiply_accumulate(const Team& team, Accumulator& c, const F64A& a, const F64B& b) {
        warp_mma(team, c, a, b);
    }
};

} // namespace collapse::mma
