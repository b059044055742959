// /boundaries/<axis>: the refined phase boundaries `collapse-sweep refine`
// adds to a finished output file (docs/format.md, "Refined boundaries").
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "collapse/config.hpp"

namespace collapse::storage {

// One boundary per combination of the other grid axes (seed excluded),
// row-major over `coordinates` in spec order.
struct BoundaryTable {
    std::string axis;              // the refined axis: "frustration" or "lr"
    std::vector<Axis> coordinates; // every other grid axis, spec order
    std::vector<double> estimate, bracket_low, bracket_high, standard_error; // [combination]
    std::vector<std::int64_t> probes_run;                                   // [combination]
    std::int64_t probe_slots = 1;               // length of the probe dimension (>= 1)
    std::vector<double> probe_value, probe_quantity; // [combination][probe_slots], NaN-padded
    // Every crossing of the level between adjacent grid values, in axis order
    // (more than one: the quantity is non-monotone along the axis). The first
    // is the one refined, stored as its final bracket; the others as their
    // grid intervals. Each pair is numerically ordered.
    std::vector<std::int64_t> crossings;             // [combination]
    std::int64_t crossing_slots = 1;                 // length of the crossing dimension (>= 1)
    std::vector<double> crossing_low, crossing_high; // [combination][crossing_slots], NaN-padded
    std::map<std::string, std::string> text_attributes;
    std::map<std::string, double> number_attributes;

    std::size_t combinations() const { return estimate.size(); }
};

// Throws StorageError unless `path` is an output file that opens for writing:
// a running or killed writer (SWMR superblock flag, or the writer's lock)
// makes it fail, with a message saying to finish the run first.
void require_closed_output(const std::string& path);

// Writes (replacing) the group /boundaries/<axis> with its own dimension
// scales, so xarray opens group "boundaries/<axis>" with named coordinates.
void write_boundaries(const std::string& path, const BoundaryTable& table);

} // namespace collapse::storage
