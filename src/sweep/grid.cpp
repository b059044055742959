#include "collapse/sweep/grid.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace collapse {

int SweepSpec::max_head_dim() const {
    int largest = defaults.head_dim;
    for (const Axis& axis : axes)
        if (axis.name == "head_dim")
            for (double value : axis.values) largest = std::max(largest, static_cast<int>(value));
    return largest;
}

Grid::Grid(const SweepSpec& spec) : spec_(&spec) {
    for (const Axis& axis : spec.axes) shape_.push_back(static_cast<std::int64_t>(axis.values.size()));
    shape_.push_back(spec.seeds);
    for (std::int64_t length : shape_) size_ *= length;
}

Grid Grid::from_points(const SweepSpec& spec, std::vector<TrajectoryParams> points) {
    Grid grid(spec);
    grid.shape_ = {static_cast<std::int64_t>(points.size())};
    grid.size_ = static_cast<std::int64_t>(points.size());
    grid.points_ = std::move(points);
    grid.explicit_points_ = true;
    return grid;
}

std::vector<std::int64_t> Grid::unravel(std::int64_t flat_index) const {
    if (flat_index < 0 || flat_index >= size_)
        throw std::out_of_range("flat index " + std::to_string(flat_index) + " outside the grid");
    std::vector<std::int64_t> index(shape_.size());
    for (std::size_t a = shape_.size(); a-- > 0;) {
        index[a] = flat_index % shape_[a];
        flat_index /= shape_[a];
    }
    return index;
}

TrajectoryParams Grid::params(std::int64_t flat_index) const {
    if (explicit_points_) {
        if (flat_index < 0 || flat_index >= size_)
            throw std::out_of_range("point index " + std::to_string(flat_index) + " outside the list");
        return points_[static_cast<std::size_t>(flat_index)];
    }
    const std::vector<std::int64_t> index = unravel(flat_index);
    TrajectoryParams params = spec_->defaults;
    for (std::size_t a = 0; a < spec_->axes.size(); ++a) {
        const Axis& axis = spec_->axes[a];
        const double value = axis.values[static_cast<std::size_t>(index[a])];
        if (axis.name == "frustration") params.frustration = value;
        else if (axis.name == "head_dim") params.head_dim = static_cast<int>(value);
        else if (axis.name == "lr") params.lr = value;
        else if (axis.name == "stop_gradient") params.stop_gradient = value != 0.0;
        else if (axis.name == "init_scale") params.init_scale = value;
        else throw std::logic_error("grid axis '" + axis.name + "' is not a trajectory parameter");
    }
    params.seed_index = index.back();
    return params;
}

} // namespace collapse
