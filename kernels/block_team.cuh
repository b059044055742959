// A CUDA block as a team (model/team.hpp), for the block-per-trajectory
// kernels (team_kernel.cu, block_kernel.cu): __syncthreads for barriers, and
// reductions over one double per thread in shared memory, added in rank order.
#pragma once

#include "collapse/model/team.hpp"

namespace collapse::cuda {

struct BlockTeam {
    int rank;
    int size;
    double* slots; // blockDim.x doubles of shared memory
    __device__ void sync() const { __syncthreads(); }
    __device__ double sum(double value) const { return slot_sum(*this, slots, value); }
    __device__ double min(double value) const { return slot_min(*this, slots, value); }
};

} // namespace collapse::cuda
