// The catalogue of a file's contents (SPEC §6, docs/format.md): which groups,
// dimension scales and datasets a given spec produces, with shapes, element
// types, fill values and chunk shapes. The writer creates exactly this; the
// reader and the merge rely on the same names.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "collapse/config.hpp"
#include "collapse/sweep/grid.hpp"

namespace collapse::storage::detail {

enum class ElementType { int8, int32, int64, float32, float64 };

hid_t file_type_of(ElementType type);   // little-endian HDF5 file type
hid_t memory_type_of(ElementType type); // native type

// A named coordinate of one group: a 1-D dataset made a dimension scale.
// Counting scales (0, 1, ..., count - 1: seed, class, component, ...) keep
// only their length, so a sweep of 10^6 seeds does not hold 8 MB per group.
struct ScaleLayout {
    std::string name;
    ElementType type = ElementType::int32;
    std::vector<double> values; // explicit coordinates; empty for a counting scale
    bool log_spaced = false;    // grid axes only: plot on a log axis
    std::int64_t count = 0;     // a counting scale's length (values empty)

    std::int64_t length() const { return values.empty() ? count : static_cast<std::int64_t>(values.size()); }
};

struct DatasetLayout {
    std::string group; // "results", "traces", "final", "initial", "graph"
    std::string name;
    ElementType type = ElementType::float64;
    std::vector<std::string> dims; // scale names, one per dimension
    std::vector<std::int64_t> shape;
    std::vector<std::int64_t> chunk;
    bool gridded = false;         // leading dims are the grid (axes..., seed)
    std::int64_t per_item = 1;    // elements per trajectory (gridded) or per seed (otherwise)
    // Attributes written with the dataset beyond units and long_name (units.cpp); empty: not written.
    std::string description;
    std::vector<std::pair<std::string, double>> numbers; // further numeric attributes

    std::string path() const { return "/" + group + "/" + name; }
};

struct GroupLayout {
    std::string name;
    std::vector<ScaleLayout> scales; // exactly the dims its datasets use
};

struct FileLayout {
    std::vector<std::string> grid_dims; // axes in spec order, then "seed"
    std::vector<std::int64_t> grid_shape;
    std::vector<std::int64_t> steps;    // record steps, /traces/step
    std::vector<GroupLayout> groups;
    std::vector<DatasetLayout> datasets; // /traces/step is a scale, not listed here

    const DatasetLayout* find(const std::string& path) const;
};

// Run-precision element type of traces and geometry.
ElementType real_type(Precision precision);

FileLayout describe_layout(const SweepSpec& spec, const Grid& grid);

// Per-seed datasets (/initial [seed, ...] and /graph) are identical in every
// shard; everything else in /initial, /results, /traces, /final is gridded.
bool is_per_seed(const std::string& group, const std::string& name);

// Chunk shape covering a contiguous run of row-major elements: full trailing
// dimensions, about `target_elements` in all, and at most `max_items` steps
// of the leading `item_rank` dimensions (trajectories or seeds).
std::vector<std::int64_t> contiguous_chunk(const std::vector<std::int64_t>& shape, std::size_t item_rank,
                                           std::int64_t target_elements, std::int64_t max_items);

} // namespace collapse::storage::detail
