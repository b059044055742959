// The trajectory grid of a sweep: the axes in spec order with seed last,
// flattened row-major. The flat index is the identity of a trajectory
// everywhere (scheduler, shards, resume, HDF5 element order).
#pragma once

#include <cstdint>
#include <vector>

#include "collapse/config.hpp"

namespace collapse {

class Grid {
public:
    explicit Grid(const SweepSpec& spec);

    // A one-dimensional "grid" that is an explicit list of trajectories of
    // `spec` (flat index = position in `points`). Backends only ask a grid
    // for params(flat), so this runs arbitrary parameter points, e.g. the
    // probes of phase-boundary refinement, through the unchanged run_batch.
    static Grid from_points(const SweepSpec& spec, std::vector<TrajectoryParams> points);

    // Axis lengths, spec order, the seed count last.
    const std::vector<std::int64_t>& shape() const { return shape_; }
    std::int64_t size() const { return size_; }
    int rank() const { return static_cast<int>(shape_.size()); }

    std::vector<std::int64_t> unravel(std::int64_t flat_index) const;
    TrajectoryParams params(std::int64_t flat_index) const;

private:
    const SweepSpec* spec_;
    std::vector<std::int64_t> shape_;
    std::int64_t size_ = 1;
    std::vector<TrajectoryParams> points_; // from_points only
    bool explicit_points_ = false;
};

} // namespace collapse
