// A CUDA warp on the host, deterministically: 32 lanes as coroutines on the
// calling thread (warp_emulation.cpp), run in rank order from one barrier to the
// next. A team's code runs the same control flow on every lane, so "every
// lane up to its next sync, then every lane on" is exactly the barrier's
// meaning, with no OS threads (32 of them contending for 2 cores would make
// every __syncwarp a scheduler round trip).
#pragma once

#include <functional>
#include <memory>

#include "collapse/model/warp_team.hpp"

namespace collapse::testing {

class LaneScheduler {
public:
    LaneScheduler();
    ~LaneScheduler();
    LaneScheduler(const LaneScheduler&) = delete;
    LaneScheduler& operator=(const LaneScheduler&) = delete;

    // Runs body(rank) for every rank in [0, lanes) to completion. Throws
    // std::logic_error when lanes reach different numbers of syncs (a lane
    // that skips a barrier the others reach: a deadlock on the device), and
    // rethrows the first exception a lane threw.
    void run(int lanes, std::function<void(int)> body);

    // Called by lane `rank`: wait until every lane has reached its sync.
    void sync(int rank);

    // Called by lane `rank`: wait until every lane of its warp (ranks
    // 32 w .. 32 w + 31) has reached its warp sync (__syncwarp, or a
    // warp-collective such as mma.sync). Warps may reach different numbers
    // of warp syncs between two syncs; a lane whose warp-mates wait at a
    // sync of the other kind is a deadlock (std::logic_error from run).
    void sync_warp(int rank);

    struct Lanes; // the lanes' stacks and saved contexts (warp_emulation.cpp)

private:
    std::unique_ptr<Lanes> lanes_;
};

// The warp kernel's team (kernels/warp_kernel.cu) on a LaneScheduler: the
// same butterflies as the device's shuffles (model/warp_team.hpp), computed
// over all lanes' values at once so that a reduction costs two syncs.
struct EmulatedWarpTeam {
    int rank;
    static constexpr int size = warp_lanes;
    LaneScheduler* lanes;
    double* slots; // warp_lanes entries shared by the lanes

    void sync() const { lanes->sync(rank); }
    double sum(double value) const { return reduce(value, SumCombine{}); }
    double min(double value) const { return reduce(value, MinCombine{}); }
    // What __shfl_xor_sync(mask, value, offset) returns on lane `rank`.
    double shuffle_xor(double value, int offset) const {
        slots[rank] = value;
        sync();
        const double partner = slots[rank ^ offset];
        sync();
        return partner;
    }

private:
    template <class Combine>
    double reduce(double value, Combine combine) const {
        slots[rank] = value;
        sync();
        double values[warp_lanes];
        for (int lane = 0; lane < size; ++lane) values[lane] = slots[lane];
        const double result = butterfly_reduce_all(values, size, combine);
        sync();
        return result;
    }
};

} // namespace collapse::testing
