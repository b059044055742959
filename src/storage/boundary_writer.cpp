#include "collapse/storage/boundary_writer.hpp"

#include <hdf5_hl.h>

#include <limits>

#include "collapse/storage/format.hpp"
#include "file_lock.hpp"
#include "hdf5_util.hpp"
#include "hostile_input.hpp"
#include "layout.hpp"
#include "units.hpp"

namespace collapse::storage {

using namespace detail;

namespace {

Handle open_for_writing(const std::string& path) {
    QuietErrors quiet;
    check_hdf5_file(path);
    const MetadataDeadline deadline("opening " + path);
    const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, bounded_read_access().get());
    if (file < 0)
        throw StorageError(path + " does not open for writing (" + take_error_stack() +
                           "); a sweep still running or killed leaves it so: finish it with `collapse-sweep run ... "
                           "--resume` first");
    Handle handle(file, H5Fclose);
    if (!detail::has_attribute(file, "format") || read_string_attribute(file, "format") != format_name)
        throw StorageError(path + " is not a collapse-sweep output file");
    return handle;
}

ElementType element_type(const Axis& axis) {
    return axis.type == Axis::Type::integer   ? ElementType::int32
           : axis.type == Axis::Type::boolean ? ElementType::int8
                                              : ElementType::float64;
}

Handle make_scale(hid_t group, const std::string& name, ElementType type, const std::vector<double>& values,
                  int log_spaced) {
    const hsize_t length = values.size();
    Handle space = checked(H5Screate_simple(1, &length, nullptr), H5Sclose, "cannot make a dataspace");
    Handle scale = checked(H5Dcreate2(group, name.c_str(), file_type_of(type), space.get(), H5P_DEFAULT, H5P_DEFAULT,
                                      H5P_DEFAULT),
                           H5Dclose, "cannot create scale " + name);
    check(H5Dwrite(scale.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()),
          "cannot write scale " + name);
    check(H5DSset_scale(scale.get(), name.c_str()), "cannot make " + name + " a dimension scale");
    write_description(scale.get(), name);
    if (log_spaced >= 0) write_int_attribute(scale.get(), "log_spaced", log_spaced, H5T_STD_I8LE);
    return scale;
}

template <class Value>
void write_dataset(hid_t group, const std::string& name, ElementType type, hid_t memory_type,
                   const std::vector<std::int64_t>& shape, const std::vector<Value>& values,
                   const std::vector<hid_t>& scales) {
    const std::vector<hsize_t> dims = to_hsize(shape);
    Handle space = checked(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose,
                           "cannot make a dataspace");
    Handle dataset = checked(H5Dcreate2(group, name.c_str(), file_type_of(type), space.get(), H5P_DEFAULT,
                                        H5P_DEFAULT, H5P_DEFAULT),
                             H5Dclose, "cannot create " + name);
    check(H5Dwrite(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), "cannot write " + name);
    write_description(dataset.get(), name);
    for (std::size_t d = 0; d < scales.size(); ++d)
        check(H5DSattach_scale(dataset.get(), scales[d], static_cast<unsigned>(d)), "cannot attach a scale to " + name);
}

} // namespace

void require_closed_output(const std::string& path) {
    FileLock lock = FileLock::acquire(path);
    open_for_writing(path);
}

void write_boundaries(const std::string& path, const BoundaryTable& table) {
    const std::size_t combinations = table.combinations();
    std::size_t expected = 1;
    for (const Axis& axis : table.coordinates) expected *= axis.values.size();
    if (combinations != expected || table.bracket_low.size() != combinations ||
        table.bracket_high.size() != combinations || table.standard_error.size() != combinations ||
        table.probes_run.size() != combinations ||
        table.probe_value.size() != combinations * static_cast<std::size_t>(table.probe_slots) ||
        table.probe_quantity.size() != table.probe_value.size() || table.crossings.size() != combinations ||
        table.crossing_low.size() != combinations * static_cast<std::size_t>(table.crossing_slots) ||
        table.crossing_high.size() != table.crossing_low.size())
        throw StorageError("boundary table sizes do not match its coordinates");

    FileLock lock = FileLock::acquire(path);
    Handle file = open_for_writing(path);
    QuietErrors quiet;
    const std::string group_path = "/boundaries/" + table.axis;
    if (!link_exists(file.get(), "/boundaries"))
        checked(H5Gcreate2(file.get(), "/boundaries", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose,
                path + ": cannot create /boundaries")
            .reset();
    if (link_exists(file.get(), group_path))
        check(H5Ldelete(file.get(), group_path.c_str(), H5P_DEFAULT), path + ": cannot replace " + group_path);
    Handle group = checked(H5Gcreate2(file.get(), group_path.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                           H5Gclose, path + ": cannot create " + group_path);

    // Scales live in the group itself: netCDF only sees dimensions of a
    // variable's group or its ancestors.
    std::vector<Handle> scales;
    std::vector<std::int64_t> shape;
    for (const Axis& axis : table.coordinates) {
        scales.push_back(make_scale(group.get(), axis.name, element_type(axis), axis.values, axis.log_spaced ? 1 : 0));
        shape.push_back(static_cast<std::int64_t>(axis.values.size()));
    }
    std::vector<double> slots;
    for (std::int64_t p = 0; p < table.probe_slots; ++p) slots.push_back(static_cast<double>(p));
    Handle probe_scale = make_scale(group.get(), "probe", ElementType::int32, slots, -1);
    std::vector<hid_t> grid_scales;
    for (const Handle& scale : scales) grid_scales.push_back(scale.get());
    std::vector<hid_t> probe_scales = grid_scales;
    probe_scales.push_back(probe_scale.get());
    std::vector<std::int64_t> probe_shape = shape;
    probe_shape.push_back(table.probe_slots);
    std::vector<double> crossing_slots;
    for (std::int64_t k = 0; k < table.crossing_slots; ++k) crossing_slots.push_back(static_cast<double>(k));
    Handle crossing_scale = make_scale(group.get(), "crossing", ElementType::int32, crossing_slots, -1);
    std::vector<hid_t> crossing_scales = grid_scales;
    crossing_scales.push_back(crossing_scale.get());
    std::vector<std::int64_t> crossing_shape = shape;
    crossing_shape.push_back(table.crossing_slots);

    const hid_t g = group.get();
    using enum ElementType;
    write_dataset(g, "estimate", float64, H5T_NATIVE_DOUBLE, shape, table.estimate, grid_scales);
    write_dataset(g, "bracket_low", float64, H5T_NATIVE_DOUBLE, shape, table.bracket_low, grid_scales);
    write_dataset(g, "bracket_high", float64, H5T_NATIVE_DOUBLE, shape, table.bracket_high, grid_scales);
    write_dataset(g, "standard_error", float64, H5T_NATIVE_DOUBLE, shape, table.standard_error, grid_scales);
    write_dataset(g, "probes_run", int64, H5T_NATIVE_INT64, shape, table.probes_run, grid_scales);
    write_dataset(g, "probe_value", float64, H5T_NATIVE_DOUBLE, probe_shape, table.probe_value, probe_scales);
    write_dataset(g, "probe_quantity", float64, H5T_NATIVE_DOUBLE, probe_shape, table.probe_quantity, probe_scales);
    write_dataset(g, "crossings", int64, H5T_NATIVE_INT64, shape, table.crossings, grid_scales);
    write_dataset(g, "crossing_low", float64, H5T_NATIVE_DOUBLE, crossing_shape, table.crossing_low, crossing_scales);
    write_dataset(g, "crossing_high", float64, H5T_NATIVE_DOUBLE, crossing_shape, table.crossing_high, crossing_scales);
    for (const auto& [name, value] : table.text_attributes) write_string_attribute(g, name, value);
    for (const auto& [name, value] : table.number_attributes) write_double_attribute(g, name, value);
    write_string_attribute(g, "creation_time", utc_timestamp());
    check(H5Fflush(file.get(), H5F_SCOPE_GLOBAL), path + ": flush failed");
    scales.clear();
    probe_scale.reset();
    crossing_scale.reset();
    group.reset();
    if (!file.reset()) throw StorageError(path + ": closing after writing " + group_path + " failed");
}

} // namespace collapse::storage
