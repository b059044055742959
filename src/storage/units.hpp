// Units and long names of every dataset and dimension scale a file holds
// (SPEC §6: "Every dataset carries units and long_name"), and the settings
// each group carries. One catalogue for the writer, the merge and refine;
// python/collapse_sweep/units.py holds the same table for files written
// before these attributes existed (tests/storage/check_xarray.py compares them).
#pragma once

#include <hdf5.h>

#include <string>

#include "collapse/config.hpp"

namespace collapse::storage::detail {

struct Description {
    std::string units;     // "steps", "lr-steps" (t = lr * step), "1/lr-steps", "1" (ratios, counts, indices)
    std::string long_name; // empty when the name is unknown
};

// The description of a dataset or scale by its name (names are unique across
// groups). Unknown names give an empty Description.
Description describe(const std::string& name);

// Writes `units` and `long_name` on an HDF5 object; throws StorageError if
// the name is not in the catalogue (every dataset must be described).
void write_description(hid_t object, const std::string& name);

// The settings that give a group's data meaning, as attributes of the group:
// collapse_threshold, collapse_metric, stop_on_collapse, max_steps,
// record_points, method, precision, kind.
void write_group_settings(hid_t group, const SweepSpec& spec);

} // namespace collapse::storage::detail
