// Initial states made in bulk with Thrust, on whatever system the execution
// policy names: thrust::cuda::par.on(stream) in device_batch.cu, thrust::host
// in tests/backend/test_initial_state_generation.cpp, which checks the result
// bit for bit against draw_seed + make_trajectory (src/model/setup.cpp).
//
// Two passes over counting iterators:
//  1. thrust::tabulate: every seed slot's normal streams (the leading block:
//     sample embeddings N*d or encoder d*p, then labels K*d, head A and head B
//     h_max*d each) into one buffer, [slot][SeedNormalsLayout::size], with the
//     same Philox element indices and portable Box-Muller as draw_seed.
//  2. thrust::for_each: every trajectory's state entry, the seed's normal
//     times the trajectory's scale, converted to Real; exactly what
//     make_trajectory does (a double product, then one double -> Real
//     rounding; B is stored transposed).
// The scales come from the host (initial_state_task), so no device libm is
// involved anywhere. Plain C++ apart from Thrust: g++ compiles it too.
#pragma once

#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/tabulate.h>

#include <cstddef>
#include <cstdint>

#include "collapse/model/hd.hpp"
#include "collapse/model/layout.hpp"
#include "collapse/model/philox.hpp"
#include "collapse/model/portable_math.hpp"
#include "initial_state_tasks.hpp"

namespace collapse::cuda {

// Pass 1: element `index` of the normals buffer.
struct SeedNormalsFunctor {
    std::uint64_t master_seed = 0;
    const std::int64_t* slot_seeds = nullptr; // seed index of each slot
    SeedNormalsLayout layout;

    COLLAPSE_HD double operator()(std::int64_t index) const {
        const auto flat = static_cast<std::uint64_t>(index);
        const std::uint64_t slot = flat / layout.size, e = flat % layout.size;
        philox::Stream stream = layout.lead_stream;
        std::uint64_t element = e;
        if (e >= layout.head_B) {
            stream = philox::Stream::head_B;
            element = e - layout.head_B;
        } else if (e >= layout.head_A) {
            stream = philox::Stream::head_A;
            element = e - layout.head_A;
        } else if (e >= layout.labels) {
            stream = philox::Stream::label_embeddings;
            element = e - layout.labels;
        }
        return philox::StreamGenerator(master_seed, static_cast<std::uint64_t>(slot_seeds[slot]), stream).normal(element);
    }
};

// Pass 2: entry e of trajectory b's state, index = b * stride + e (entries
// beyond the trajectory's state size do nothing).
template <class Real>
struct PlaceInitialState {
    const double* normals = nullptr;
    const InitialStateTask* tasks = nullptr;
    Real* states = nullptr;
    SeedNormalsLayout seeds;
    std::uint64_t stride = 0; // the largest state size of the batch

    COLLAPSE_HD void operator()(std::int64_t index) const {
        const auto flat = static_cast<std::uint64_t>(index);
        const InitialStateTask& task = tasks[flat / stride];
        const std::uint64_t e = flat % stride;
        const StateLayout layout(task.dims);
        if (e >= layout.size) return;
        const double* z = normals + task.slot * seeds.size;
        double value;
        if (e < layout.labels) {
            value = portable::mul(task.lead_scale, z[seeds.lead + e]);
        } else if (e < layout.head_A) {
            value = portable::mul(task.label_scale, z[seeds.labels + (e - layout.labels)]);
        } else if (e < layout.head_B) {
            // A at width h: the first h rows of the h_max x d draw.
            value = portable::mul(task.head_A_scale, z[seeds.head_A + (e - layout.head_A)]);
        } else {
            // B[c][r] = row r, entry c of the h_max x d draw.
            const auto head_dim = static_cast<std::uint64_t>(task.dims.head_dim);
            const std::uint64_t q = e - layout.head_B, c = q / head_dim, r = q % head_dim;
            value = portable::mul(task.head_B_scale, z[seeds.head_B + r * static_cast<std::uint64_t>(task.dims.dim) + c]);
        }
        states[task.state_offset + e] = static_cast<Real>(value);
    }
};

// Both passes. Pointers are in the policy's memory: device pointers for
// thrust::cuda::par, host pointers for thrust::host. `normals` holds
// slot_count * seeds.size doubles; `stride` is the batch's largest state size.
template <class Policy, class Real>
void generate_initial_states(const Policy& policy, std::uint64_t master_seed, const std::int64_t* slot_seeds,
                             std::size_t slot_count, const SeedNormalsLayout& seeds, double* normals,
                             const InitialStateTask* tasks, std::size_t count, std::uint64_t stride, Real* states) {
    thrust::tabulate(policy, normals, normals + slot_count * seeds.size, SeedNormalsFunctor{master_seed, slot_seeds, seeds});
    thrust::for_each_n(policy, thrust::counting_iterator<std::int64_t>(0), static_cast<std::int64_t>(count * stride),
                       PlaceInitialState<Real>{normals, tasks, states, seeds, stride});
}

} // namespace collapse::cuda
