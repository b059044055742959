// The elementwise passes of one lockstep step, fused where the data
// dependencies allow (docs/cuda-backend.md, "One step"): each fused pass runs
// two of lockstep_functors.hpp's passes over one joint index space, the
// first part's indices then the second's. The two parts of a pass neither
// read what the other writes nor depend on the order of entries, so the
// fused pass writes exactly the bits of the two passes one after the other
// (tests/backend/test_lockstep.cpp runs both sequences).
//
// Per step: ClassSumsAndIdentity (after W = B A, before the products with
// W), Residuals (sample and label residuals), WatchStep, UpdateAndAdvance
// (the masked update, which also advances the loop step in device memory so
// that a captured step replays as the next one).
#pragma once

#include <cstdint>

#include "collapse/lockstep/lockstep_functors.hpp"

namespace collapse::lockstep {

// Class sums CS_k over [0, L K d), then W = I of plain lanes over [L K d, L K d + L d d).
// ClassSums reads X only; the identity writes W of plain lanes only.
template <class Real>
struct ClassSumsAndIdentity {
    LockstepView<Real> v;

    COLLAPSE_HD std::int64_t size() const { return v.shape.lanes * (v.shape.y_size() + v.shape.w_size()); }

    COLLAPSE_HD void operator()(std::int64_t e) const {
        const std::int64_t sums = v.shape.lanes * v.shape.y_size();
        if (e < sums) ClassSums<Real>{v}(e);
        else PlainHeadIdentity<Real>{v}(e - sums);
    }
};

// Per sample over [0, L N), then per label entry over [L N, L N + L K d):
// both read the products and class sums and write disjoint arrays.
template <class Real>
struct Residuals {
    LockstepView<Real> v;

    COLLAPSE_HD std::int64_t size() const { return v.shape.lanes * (v.shape.samples + v.shape.y_size()); }

    COLLAPSE_HD void operator()(std::int64_t e) const {
        const std::int64_t samples = v.shape.lanes * v.shape.samples;
        if (e < samples) SampleResiduals<Real>{v}(e);
        else LabelResiduals<Real>{v}(e - samples);
    }
};

// The masked update over [0, L state_size), and entry 0 advances the loop
// step (no entry of the pass reads it; WatchStep of the next step does).
template <class Real>
struct UpdateAndAdvance {
    LockstepView<Real> v;

    COLLAPSE_HD std::int64_t size() const { return v.shape.lanes * v.shape.state_size(); }

    COLLAPSE_HD void operator()(std::int64_t e) const {
        UpdateState<Real>{v}(e);
        if (e == 0) ++*v.loop_step;
    }
};

// Sets the loop step (before the loop: 0).
struct SetLoopStep {
    std::int64_t* loop_step;
    std::int64_t value;

    COLLAPSE_HD void operator()(std::int64_t) const { *loop_step = value; }
};

} // namespace collapse::lockstep
