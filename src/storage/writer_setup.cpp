#include <hdf5_hl.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "collapse/storage/format.hpp"
#include "collapse/version.hpp"
#include "counting_chunks.hpp"
#include "hostile_input.hpp"
#include "units.hpp"
#include "writer_state.hpp"

namespace collapse::storage::detail {

namespace {

const char* kind_name(ModelKind kind) { return kind == ModelKind::embedding ? "embedding" : "teacher_student"; }
const char* method_name(IntegratorMethod method) { return method == IntegratorMethod::gd ? "gd" : "rk4"; }
const char* precision_name(Precision precision) { return precision == Precision::float32 ? "float32" : "float64"; }
const char* metric_name(CollapseMetric metric) { return metric == CollapseMetric::label ? "label" : "projected"; }

bool is_axis(const SweepSpec& spec, const std::string& name) {
    for (const Axis& axis : spec.axes)
        if (axis.name == name) return true;
    return false;
}

std::string joined_lines(const std::vector<std::string>& lines) {
    std::string text;
    for (std::size_t i = 0; i < lines.size(); ++i) text += (i == 0 ? "" : "\n") + lines[i];
    return text;
}

Handle create_dataset(hid_t group, const DatasetLayout& dataset, int compression) {
    const std::vector<hsize_t> dims = to_hsize(dataset.shape), chunk = to_hsize(dataset.chunk);
    const int rank = static_cast<int>(dims.size());
    // A gridded dataset's first dimension is declared unlimited (it is never
    // extended): HDF5 then indexes its chunks with an extensible array, which
    // grows with the chunks written, instead of a fixed array allocated whole
    // on the first write (a 10^8-seed grid's file went from 8 MB to 164 MB
    // with its first batch). Per-seed datasets are written whole at creation.
    std::vector<hsize_t> max_dims = dims;
    if (dataset.gridded) max_dims.front() = H5S_UNLIMITED;
    Handle space = checked(H5Screate_simple(rank, dims.data(), max_dims.data()), H5Sclose, "cannot make a dataspace");
    Handle properties = checked(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, "cannot make a property list");
    check(H5Pset_chunk(properties.get(), rank, chunk.data()), "cannot chunk " + dataset.path());
    if (compression > 0) {
        check(H5Pset_shuffle(properties.get()), "cannot set shuffle on " + dataset.path());
        check(H5Pset_deflate(properties.get(), static_cast<unsigned>(compression)), "cannot set deflate");
    }
    // Unwritten entries read as "not run": -1 for integers, NaN for reals.
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const std::int64_t minus_one = -1;
    const bool real = dataset.type == ElementType::float32 || dataset.type == ElementType::float64;
    check(real ? H5Pset_fill_value(properties.get(), H5T_NATIVE_DOUBLE, &nan)
               : H5Pset_fill_value(properties.get(), H5T_NATIVE_INT64, &minus_one),
          "cannot set the fill value of " + dataset.path());
    Handle created = checked(H5Dcreate2(group, dataset.name.c_str(), file_type_of(dataset.type), space.get(),
                                        H5P_DEFAULT, properties.get(), H5P_DEFAULT),
                             H5Dclose, "cannot create " + dataset.path());
    write_description(created.get(), dataset.name);
    // Beyond units and long_name: how a dataset's values were chosen (the slow_rate fit window).
    if (!dataset.description.empty()) write_string_attribute(created.get(), "description", dataset.description);
    for (const auto& [name, value] : dataset.numbers) write_double_attribute(created.get(), name, value);
    return created;
}

// A counting scale (0, 1, 2, ...: seed, class, sample, ...) is chunked and
// compressed: it costs a few bytes per thousand entries on disk instead of
// 8 per entry before any trajectory has run (10^8 seeds were 2.4 GB). Its
// chunks are stored ready-made (counting_chunks.hpp): compressing 3 x 10^8
// seed values through H5Dwrite took 24-79 s before the file existed.
constexpr hsize_t counting_chunk = 1 << 16;
constexpr int counting_deflate_level = 9; // each distinct byte plane is compressed once

// One encoder per (element size, chunk length): the groups' copies of a
// scale share their compressed pieces.
using CountingEncoders = std::map<std::pair<std::size_t, hsize_t>, CountingChunkEncoder>;

void write_counting_chunks(hid_t dataset, hsize_t length, hsize_t chunk, const std::string& what,
                           CountingEncoders& encoders) {
    Handle type = checked(H5Dget_type(dataset), H5Tclose, "cannot read the type of " + what);
    const std::size_t element_size = H5Tget_size(type.get());
    CountingChunkEncoder& encoder =
        encoders.try_emplace({element_size, chunk}, element_size, static_cast<std::size_t>(chunk), counting_deflate_level)
            .first->second;
    for (hsize_t first = 0; first < length; first += chunk) {
        const std::vector<unsigned char>& bytes = encoder.encode(first);
        // Filter mask 0: both filters (shuffle, deflate) were applied.
        check(H5Dwrite_chunk(dataset, H5P_DEFAULT, 0, &first, bytes.size(), bytes.data()), "cannot write " + what);
    }
}

Handle create_scale(hid_t group, const std::string& group_name, const ScaleLayout& scale, bool is_grid_axis,
                    CountingEncoders& encoders) {
    const auto length = static_cast<hsize_t>(scale.length());
    Handle space = checked(H5Screate_simple(1, &length, nullptr), H5Sclose, "cannot make a dataspace");
    Handle properties = checked(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, "cannot make a property list");
    const bool counting = scale.values.empty() && length > 0;
    const hsize_t chunk = std::min(length, counting_chunk);
    if (counting) {
        check(H5Pset_chunk(properties.get(), 1, &chunk), "cannot chunk " + scale.name);
        check(H5Pset_shuffle(properties.get()), "cannot set shuffle on " + scale.name);
        check(H5Pset_deflate(properties.get(), counting_deflate_level), "cannot set deflate on " + scale.name);
    }
    Handle dataset = checked(H5Dcreate2(group, scale.name.c_str(), file_type_of(scale.type), space.get(),
                                        H5P_DEFAULT, properties.get(), H5P_DEFAULT),
                             H5Dclose, "cannot create /" + group_name + "/" + scale.name);
    const std::string what = "/" + group_name + "/" + scale.name;
    if (!scale.values.empty())
        check(H5Dwrite(dataset.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, scale.values.data()),
              "cannot write " + what);
    else if (counting)
        write_counting_chunks(dataset.get(), length, chunk, what, encoders);
    check(H5DSset_scale(dataset.get(), scale.name.c_str()), "cannot make " + scale.name + " a dimension scale");
    write_description(dataset.get(), scale.name);
    if (is_grid_axis) write_int_attribute(dataset.get(), "log_spaced", scale.log_spaced ? 1 : 0, H5T_STD_I8LE);
    return dataset;
}

} // namespace

Handle latest_format_access() {
    Handle access = checked(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, "cannot make a file access list");
    check(H5Pset_libver_bounds(access.get(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST), "cannot set format bounds");
    bound_metadata_retries(access.get()); // --resume opens hostile files through this list too
    return access;
}

void write_root_attributes(hid_t file, const SweepSpec& spec, const Provenance& provenance, const ShardRange& shard) {
    auto text = [&](const char* name, const std::string& value) { write_string_attribute(file, name, value); };
    auto i32 = [&](const char* name, std::int64_t value) { write_int_attribute(file, name, value, H5T_STD_I32LE); };
    auto i64 = [&](const char* name, std::int64_t value) { write_int_attribute(file, name, value, H5T_STD_I64LE); };
    auto flag = [&](const char* name, bool value) { write_int_attribute(file, name, value ? 1 : 0, H5T_STD_I8LE); };

    text("format", format_name);
    i32("format_version", format_version);
    text("tool_version", tool_version);
    text("git_sha", git_sha);
    text("command_line", provenance.command_line);
    text("spec", spec.source_text);
    text("spec_overrides", joined_lines(spec.overrides));
    text("spec_sha256", spec_sha256(spec));
    text("spec_path", spec.source_path);
    text("backend", provenance.backend);
    text("device_name", provenance.device_name);
    text("precision", precision_name(spec.integrator.precision));
    text("creation_time", utc_timestamp());

    text("kind", kind_name(spec.shape.kind));
    i32("classes", spec.shape.classes);
    i32("samples_per_class", spec.shape.samples_per_class);
    i32("samples", spec.shape.samples());
    i32("dim", spec.shape.dim);
    i32("input_dim", spec.shape.input_dim);
    i32("max_head_dim", spec.max_head_dim());
    text("method", method_name(spec.integrator.method));
    i64("max_steps", spec.integrator.max_steps);
    i32("record_points", spec.output.record_points);
    i64("record_every", spec.output.record_every);
    text("collapse_metric", metric_name(spec.collapse.metric));
    write_double_attribute(file, "collapse_threshold", spec.collapse.threshold);
    flag("stop_on_collapse", spec.collapse.stop_on_collapse);
    flag("save_samples", spec.output.save_samples);
    flag("save_initial", spec.output.save_initial);
    i32("compression", spec.output.compression);
    write_scalar_attribute(file, "master_seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, &spec.master_seed);
    i64("seeds", spec.seeds);

    // Trajectory parameters that are not grid axes hold one value for the
    // whole sweep; the axes' values are the coordinate datasets instead.
    if (!is_axis(spec, "frustration")) write_double_attribute(file, "frustration", spec.defaults.frustration);
    if (!is_axis(spec, "head_dim")) i32("head_dim", spec.defaults.head_dim);
    if (!is_axis(spec, "lr")) write_double_attribute(file, "lr", spec.defaults.lr);
    if (!is_axis(spec, "stop_gradient")) flag("stop_gradient", spec.defaults.stop_gradient);
    if (!is_axis(spec, "init_scale")) write_double_attribute(file, "init_scale", spec.defaults.init_scale);

    i64("shard_index", shard.index);
    i64("shard_count", shard.count);
    i64("shard_begin", shard.begin);
    i64("shard_end", shard.end);
}

void build_file_structure(hid_t file, const SweepSpec& spec, const FileLayout& layout, const Provenance& provenance,
                          const ShardRange& shard) {
    write_root_attributes(file, spec, provenance, shard);
    CountingEncoders encoders;
    for (const GroupLayout& group_layout : layout.groups) {
        Handle group = checked(H5Gcreate2(file, group_layout.name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                               H5Gclose, "cannot create group /" + group_layout.name);
        write_group_settings(group.get(), spec);
        std::map<std::string, Handle> scales;
        for (const ScaleLayout& scale : group_layout.scales) {
            const bool grid_axis = std::find(layout.grid_dims.begin(), layout.grid_dims.end(), scale.name) !=
                                   layout.grid_dims.end();
            scales.emplace(scale.name, create_scale(group.get(), group_layout.name, scale,
                                                    grid_axis && scale.name != "seed", encoders));
        }
        for (const DatasetLayout& dataset : layout.datasets) {
            if (dataset.group != group_layout.name) continue;
            Handle created = create_dataset(group.get(), dataset, spec.output.compression);
            for (std::size_t d = 0; d < dataset.dims.size(); ++d)
                check(H5DSattach_scale(created.get(), scales.at(dataset.dims[d]).get(), static_cast<unsigned>(d)),
                      "cannot attach scale " + dataset.dims[d] + " to " + dataset.path());
        }
    }
}

} // namespace collapse::storage::detail
