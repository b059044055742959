// No duplicated work (docs/cli.md, "Twins computed once"): at h = 0 the
// stop-gradient setting changes nothing, bit for bit (SPEC §1), so on a grid
// with a stop_gradient axis every h = 0 trajectory has a twin that differs
// only in stop_gradient. Twins are put in the same batch (TwinIndex, used by
// the batch cutters) and computed once there (TwinSharingBackend), their
// result written to both cells.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <unordered_set>
#include <vector>

#include "collapse/backend/backend.hpp"
#include "collapse/scheduler/sweep_runner.hpp"

namespace collapse {

// The twin of a flat index of the grid of `spec`: the same point with the
// other stop_gradient value when h = 0. Disabled (no twins) without a
// stop_gradient axis of two values or when h is fixed above 0.
class TwinIndex {
public:
    TwinIndex() = default;
    explicit TwinIndex(const SweepSpec& spec);
    bool enabled() const { return stop_gradient_stride_ > 0; }
    // -1 when `flat` has no twin.
    std::int64_t twin(std::int64_t flat) const;

private:
    std::int64_t stop_gradient_stride_ = 0; // 0: disabled
    std::int64_t head_stride_ = 0;
    std::vector<double> head_values_; // empty: head_dim is not an axis (then it is 0 here)
};

// Cuts a pending set into batches of at most `count` trajectories to
// compute, each batch also holding the pending twins of its h = 0 entries
// (pulled forward from later in the set, and skipped when reached), so a
// batch has at most 2 count entries and TwinSharingBackend computes at most
// count of them. With a disabled TwinIndex this is plain PendingSet::take.
class BatchCutter {
public:
    BatchCutter(const PendingSet& pending, TwinIndex twins) : pending_(&pending), twins_(twins) {}
    void next(std::int64_t count, std::vector<std::int64_t>& out);

private:
    const PendingSet* pending_;
    TwinIndex twins_;
    PendingSet::Position position_;
    std::unordered_set<std::int64_t> pulled_forward_; // taken early, still to skip
    std::vector<std::int64_t> taken_;
};

// Wraps a backend: in each run_batch, trajectories whose parameters are
// equal once stop_gradient is set to false wherever h = 0 are computed once
// and copied to every slot that asked for them. Works on any grid, explicit
// point lists (refine's probes) included.
class TwinSharingBackend final : public Backend {
public:
    explicit TwinSharingBackend(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {}
    std::string name() const override { return inner_->name(); }
    std::string device_name() const override { return inner_->device_name(); }
    std::int64_t default_batch_size(const SweepSpec& spec) const override { return inner_->default_batch_size(spec); }
    void run_batch(const SweepSpec& spec, const Grid& grid, std::span<const std::int64_t> flat_indices,
                   BatchOutput& out) override;

    std::int64_t trajectories_requested() const { return requested_; }
    std::int64_t trajectories_computed() const { return computed_; }
    Backend& inner() { return *inner_; }

private:
    std::unique_ptr<Backend> inner_;
    BatchOutput unique_out_;
    std::atomic<std::int64_t> requested_{0}, computed_{0};
};

// False when the environment sets COLLAPSE_SHARE_TWINS=0 (compute every
// cell, for checking that sharing changes nothing); any other value but 1
// is an error naming the variable.
bool twin_sharing_enabled();

} // namespace collapse
