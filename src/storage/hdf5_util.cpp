#include "hdf5_util.hpp"

#include "hostile_input.hpp"

#include <hdf5_hl.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace collapse::storage::detail {

QuietErrors::QuietErrors() {
    H5Eget_auto2(H5E_DEFAULT, &saved_function_, &saved_data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

QuietErrors::~QuietErrors() { H5Eset_auto2(H5E_DEFAULT, saved_function_, saved_data_); }

namespace {

herr_t collect_error(unsigned, const H5E_error2_t* error, void* client_data) {
    auto& lines = *static_cast<std::vector<std::string>*>(client_data);
    std::string line = error->desc != nullptr ? error->desc : "";
    char minor[160] = {0};
    if (H5Eget_msg(error->min_num, nullptr, minor, sizeof minor) > 0 && line.find(minor) == std::string::npos)
        line += std::string(line.empty() ? "" : " (") + minor + (line.empty() ? "" : ")");
    if (!line.empty() && (lines.empty() || lines.back() != line)) lines.push_back(line);
    return 0;
}

} // namespace

std::string take_error_stack() {
    std::vector<std::string> lines;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_error, &lines);
    H5Eclear2(H5E_DEFAULT);
    // The innermost entries say why; the outer ones repeat the API call.
    std::string text;
    const std::size_t first = lines.size() > 3 ? lines.size() - 3 : 0;
    for (std::size_t i = first; i < lines.size(); ++i) text += (text.empty() ? "" : "; ") + lines[i];
    return text;
}

void fail(const std::string& what) {
    const std::string stack = take_error_stack();
    // HDF5's own file lock (flock) refuses a file another process has open;
    // its error stack only says "errno = 11". Say it in words first.
    if (stack.find("unable to lock file") != std::string::npos)
        throw StorageError(what + ": another process has the file open (HDF5 file locking; close it there, or see "
                                  "HDF5_USE_FILE_LOCKING in docs/format.md) (HDF5: " + stack + ")");
    throw StorageError(stack.empty() ? what : what + " (HDF5: " + stack + ")");
}

Handle checked(hid_t id, Handle::Closer closer, const std::string& what) {
    if (id < 0) fail(what);
    return Handle(id, closer);
}

void check(herr_t status, const std::string& what) {
    if (status < 0) fail(what);
}

Handle open_group(hid_t location, const std::string& name) {
    return checked(H5Gopen2(location, name.c_str(), H5P_DEFAULT), H5Gclose, "cannot open group " + name);
}

Handle open_dataset(hid_t location, const std::string& path) {
    return checked(H5Dopen2(location, path.c_str(), H5P_DEFAULT), H5Dclose, "cannot open dataset " + path);
}

bool link_exists(hid_t location, const std::string& path) {
    // H5Lexists fails rather than answering false when a parent is missing.
    std::string prefix = path.starts_with('/') ? "/" : "";
    std::size_t start = prefix.size();
    while (start < path.size()) {
        const std::size_t slash = path.find('/', start);
        const std::string part = path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
        prefix += part;
        if (H5Lexists(location, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
        if (slash == std::string::npos) break;
        prefix += '/';
        start = slash + 1;
    }
    return true;
}

std::vector<hsize_t> to_hsize(const std::vector<std::int64_t>& values) {
    return {values.begin(), values.end()};
}

std::vector<std::int64_t> dataset_dims(hid_t dataset) {
    Handle space = checked(H5Dget_space(dataset), H5Sclose, "cannot get a dataspace");
    const int rank = H5Sget_simple_extent_ndims(space.get());
    if (rank < 0) fail("cannot get a dataset rank");
    std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
    H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    return {dims.begin(), dims.end()};
}

namespace {

void delete_attribute_if_present(hid_t object, const std::string& name) {
    if (H5Aexists(object, name.c_str()) > 0) check(H5Adelete(object, name.c_str()), "cannot replace attribute " + name);
}

Handle utf8_string_type() {
    Handle type = checked(H5Tcopy(H5T_C_S1), H5Tclose, "cannot make a string type");
    check(H5Tset_size(type.get(), H5T_VARIABLE), "cannot make a string type");
    check(H5Tset_cset(type.get(), H5T_CSET_UTF8), "cannot make a string type");
    return type;
}

} // namespace

void write_scalar_attribute(hid_t object, const std::string& name, hid_t file_type, hid_t memory_type,
                            const void* value) {
    delete_attribute_if_present(object, name);
    Handle space = checked(H5Screate(H5S_SCALAR), H5Sclose, "cannot make a scalar dataspace");
    Handle attribute = checked(H5Acreate2(object, name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                               H5Aclose, "cannot create attribute " + name);
    check(H5Awrite(attribute.get(), memory_type, value), "cannot write attribute " + name);
}

void write_string_attribute(hid_t object, const std::string& name, const std::string& value) {
    Handle type = utf8_string_type();
    const char* text = value.c_str();
    write_scalar_attribute(object, name, type.get(), type.get(), &text);
}

void write_int_attribute(hid_t object, const std::string& name, std::int64_t value, hid_t file_type) {
    write_scalar_attribute(object, name, file_type, H5T_NATIVE_INT64, &value);
}

void write_double_attribute(hid_t object, const std::string& name, double value) {
    write_scalar_attribute(object, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

bool has_attribute(hid_t object, const std::string& name) { return H5Aexists(object, name.c_str()) > 0; }

std::string read_string_attribute(hid_t object, const std::string& name) {
    const MetadataDeadline deadline("reading attribute " + name + " of " + file_name_of(object));
    Handle attribute = checked(H5Aopen(object, name.c_str(), H5P_DEFAULT), H5Aclose, "missing attribute " + name);
    Handle file_type = checked(H5Aget_type(attribute.get()), H5Tclose, "cannot read attribute " + name);
    if (H5Tget_class(file_type.get()) != H5T_STRING) throw StorageError("attribute " + name + " is not a string");
    Handle space = checked(H5Aget_space(attribute.get()), H5Sclose, "cannot read attribute " + name);
    if (H5Sget_simple_extent_npoints(space.get()) != 1) throw StorageError("attribute " + name + " is not a scalar");
    if (H5Tis_variable_str(file_type.get()) > 0) {
        Handle memory_type = checked(H5Tcopy(file_type.get()), H5Tclose, "cannot read attribute " + name);
        char* text = nullptr;
        check(H5Aread(attribute.get(), memory_type.get(), &text), "cannot read attribute " + name);
        std::string value = text != nullptr ? text : "";
        H5Dvlen_reclaim(memory_type.get(), space.get(), H5P_DEFAULT, &text);
        return value;
    }
    const std::size_t size = H5Tget_size(file_type.get());
    std::string value(size, '\0');
    check(H5Aread(attribute.get(), file_type.get(), value.data()), "cannot read attribute " + name);
    value.resize(std::strlen(value.c_str())); // fixed-length strings are null-padded
    return value;
}

std::int64_t read_int_attribute(hid_t object, const std::string& name) {
    const MetadataDeadline deadline("reading attribute " + name + " of " + file_name_of(object));
    Handle attribute = checked(H5Aopen(object, name.c_str(), H5P_DEFAULT), H5Aclose, "missing attribute " + name);
    std::int64_t value = 0;
    check(H5Aread(attribute.get(), H5T_NATIVE_INT64, &value), "cannot read attribute " + name + " as an integer");
    return value;
}

std::string read_attribute_as_text(hid_t object, const std::string& name) {
    const MetadataDeadline deadline("reading attribute " + name + " of " + file_name_of(object));
    Handle attribute = checked(H5Aopen(object, name.c_str(), H5P_DEFAULT), H5Aclose, "missing attribute " + name);
    Handle file_type = checked(H5Aget_type(attribute.get()), H5Tclose, "cannot read attribute " + name);
    switch (H5Tget_class(file_type.get())) {
    case H5T_STRING:
        return read_string_attribute(object, name);
    case H5T_INTEGER:
        if (H5Tget_sign(file_type.get()) == H5T_SGN_NONE) { // master_seed is uint64
            std::uint64_t value = 0;
            check(H5Aread(attribute.get(), H5T_NATIVE_UINT64, &value), "cannot read attribute " + name);
            return std::to_string(value);
        }
        return std::to_string(read_int_attribute(object, name));
    case H5T_FLOAT: {
        double value = 0;
        check(H5Aread(attribute.get(), H5T_NATIVE_DOUBLE, &value), "cannot read attribute " + name);
        char text[32];
        std::snprintf(text, sizeof text, "%.17g", value);
        return text;
    }
    default:
        throw StorageError("attribute " + name + " has a type that cannot be shown as text");
    }
}

namespace {

herr_t collect_attribute_name(hid_t, const char* name, const H5A_info_t*, void* client_data) {
    static_cast<std::vector<std::string>*>(client_data)->emplace_back(name);
    return 0;
}

void copy_attribute(hid_t source, hid_t target, const std::string& name) {
    Handle attribute = checked(H5Aopen(source, name.c_str(), H5P_DEFAULT), H5Aclose, "cannot open attribute " + name);
    Handle file_type = checked(H5Aget_type(attribute.get()), H5Tclose, "cannot copy attribute " + name);
    const H5T_class_t type_class = H5Tget_class(file_type.get());
    if (type_class == H5T_REFERENCE) return; // references point into the source file
    Handle space = checked(H5Aget_space(attribute.get()), H5Sclose, "cannot copy attribute " + name);
    Handle memory_type = type_class == H5T_STRING
                             ? checked(H5Tcopy(file_type.get()), H5Tclose, "cannot copy attribute " + name)
                             : checked(H5Tget_native_type(file_type.get(), H5T_DIR_ASCEND), H5Tclose,
                                       "cannot copy attribute " + name);
    const auto points = static_cast<std::size_t>(H5Sget_simple_extent_npoints(space.get()));
    std::vector<unsigned char> buffer(std::max<std::size_t>(1, points) * H5Tget_size(memory_type.get()));
    check(H5Aread(attribute.get(), memory_type.get(), buffer.data()), "cannot read attribute " + name);
    const bool variable_length =
        H5Tis_variable_str(memory_type.get()) > 0 || H5Tdetect_class(memory_type.get(), H5T_VLEN) > 0;
    delete_attribute_if_present(target, name);
    const hid_t copy = H5Acreate2(target, name.c_str(), file_type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT);
    const herr_t written = copy >= 0 ? H5Awrite(copy, memory_type.get(), buffer.data()) : -1;
    if (copy >= 0) H5Aclose(copy);
    if (variable_length) H5Dvlen_reclaim(memory_type.get(), space.get(), H5P_DEFAULT, buffer.data());
    check(written, "cannot copy attribute " + name);
}

} // namespace

void copy_attributes(hid_t source, hid_t target, const std::vector<std::string>& skip) {
    std::vector<std::string> names;
    check(H5Aiterate2(source, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_attribute_name, &names),
          "cannot list attributes");
    for (const std::string& name : names)
        if (std::find(skip.begin(), skip.end(), name) == skip.end()) {
            // Variable-length values live in the global heap, where damage can make HDF5 loop forever.
            const MetadataDeadline deadline("copying attribute " + name + " of " + file_name_of(source));
            copy_attribute(source, target, name);
        }
}

namespace {

herr_t take_scale_name(hid_t, unsigned, hid_t scale, void* client_data) {
    char path[1024] = {0};
    if (H5Iget_name(scale, path, sizeof path) <= 0) return -1;
    std::string name = path;
    *static_cast<std::string*>(client_data) = name.substr(name.rfind('/') + 1);
    return 1; // the first attached scale names the dimension
}

} // namespace

std::string attached_scale_name(hid_t dataset, unsigned dim) {
    // DIMENSION_LIST is a variable-length attribute: its values live in the global heap.
    const MetadataDeadline deadline("reading the dimension scales of " + file_name_of(dataset));
    std::string name;
    if (H5DSget_num_scales(dataset, dim) <= 0) return name;
    if (H5DSiterate_scales(dataset, dim, nullptr, take_scale_name, &name) < 0) fail("cannot read the dimension scales of " + file_name_of(dataset));
    return name;
}

} // namespace collapse::storage::detail
