// A team is the group of threads that integrates one trajectory together.
// The CPU backend and the thread-per-trajectory kernel use SoloTeam (one
// thread, every sync a no-op, so the shared runner and integrators compile to
// the plain loops they always were); the block-per-trajectory kernel uses a
// CUDA block (kernels/team_kernel.cu), and the host tests emulate a block with
// std::threads and a barrier (tests/backend/team_emulation.hpp).
//
// A team type provides
//   rank, size       this thread's index and the team's thread count
//   sync()           a barrier: writes before it are visible to all after it
//   sum(v), min(v)   the same value on every thread, independent of timing
//
// Work is shared by striding over indices (team_for). Every thread runs the
// same control flow, and decisions are taken on values every thread holds
// bit-identically (reductions sum the per-thread parts in rank order), so no
// thread ever skips a barrier the others reach.
#pragma once

#include "collapse/model/hd.hpp"

namespace collapse {

struct SoloTeam {
    static constexpr int rank = 0;
    static constexpr int size = 1;
    COLLAPSE_HD void sync() const {}
    COLLAPSE_HD double sum(double value) const { return value; }
    COLLAPSE_HD double min(double value) const { return value; }
};

// body(e) for e in [0, count), strided over the team, in count's index type
// (the team model uses int: 32-bit division on the device, team_model.hpp).
template <class Team, class Index, class Body>
COLLAPSE_HD inline void team_for(const Team& team, Index count, Body&& body) {
    for (Index e = team.rank; e < count; e += team.size) body(e);
}

// The reductions of a team whose threads share `slots` (one double per rank):
// every thread reads all parts in rank order, so all get the same bits.
// The trailing sync keeps a fast thread from overwriting a slot that a slow
// one has not read yet.
template <class Team>
COLLAPSE_HD inline double slot_sum(const Team& team, double* slots, double value) {
    slots[team.rank] = value;
    team.sync();
    double total = 0;
    for (int r = 0; r < team.size; ++r) total += slots[r];
    team.sync();
    return total;
}

template <class Team>
COLLAPSE_HD inline double slot_min(const Team& team, double* slots, double value) {
    slots[team.rank] = value;
    team.sync();
    double smallest = slots[0];
    for (int r = 1; r < team.size; ++r) smallest = slots[r] < smallest ? slots[r] : smallest;
    team.sync();
    return smallest;
}

} // namespace collapse
