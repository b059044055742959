// Thin RAII and error plumbing over the HDF5 C API, shared by the writer, the
// reader and the merge. Every failure becomes a StorageError carrying HDF5's
// own error-stack text, and HDF5's automatic stderr printing is suppressed
// while our calls run (we report the errors ourselves, once).
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "collapse/storage/error.hpp"

namespace collapse::storage::detail {

class Handle {
public:
    using Closer = herr_t (*)(hid_t);
    Handle() = default;
    Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
    Handle(Handle&& other) noexcept : id_(std::exchange(other.id_, H5I_INVALID_HID)), closer_(other.closer_) {}
    Handle& operator=(Handle&& other) noexcept {
        if (this != &other) {
            reset();
            id_ = std::exchange(other.id_, H5I_INVALID_HID);
            closer_ = other.closer_;
        }
        return *this;
    }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    ~Handle() { reset(); }

    hid_t get() const { return id_; }
    // Forgets the id without closing it: HDF5 keeps the object open and
    // never flushes it (used after a failed write, see write_in_window).
    void abandon() { id_ = H5I_INVALID_HID; }
    explicit operator bool() const { return id_ >= 0; }
    // Closes now; returns false if HDF5 reported an error while closing.
    bool reset() {
        bool ok = true;
        if (id_ >= 0 && closer_ != nullptr) ok = closer_(id_) >= 0;
        id_ = H5I_INVALID_HID;
        return ok;
    }

private:
    hid_t id_ = H5I_INVALID_HID;
    Closer closer_ = nullptr;
};

// Turns HDF5's automatic error printing off for the lifetime of the object.
class QuietErrors {
public:
    QuietErrors();
    ~QuietErrors();
    QuietErrors(const QuietErrors&) = delete;
    QuietErrors& operator=(const QuietErrors&) = delete;

private:
    H5E_auto2_t saved_function_ = nullptr;
    void* saved_data_ = nullptr;
};

// The current HDF5 error stack as one line (and clears it).
std::string take_error_stack();

[[noreturn]] void fail(const std::string& what);
Handle checked(hid_t id, Handle::Closer closer, const std::string& what);
void check(herr_t status, const std::string& what);

Handle open_group(hid_t location, const std::string& name);
Handle open_dataset(hid_t location, const std::string& path);
bool link_exists(hid_t location, const std::string& path);

std::vector<hsize_t> to_hsize(const std::vector<std::int64_t>& values);
std::vector<std::int64_t> dataset_dims(hid_t dataset);

// Root/object attributes. Strings are variable-length UTF-8 scalars (h5py
// decodes them to str); writing replaces an existing attribute.
void write_string_attribute(hid_t object, const std::string& name, const std::string& value);
void write_int_attribute(hid_t object, const std::string& name, std::int64_t value, hid_t file_type);
void write_double_attribute(hid_t object, const std::string& name, double value);
void write_scalar_attribute(hid_t object, const std::string& name, hid_t file_type, hid_t memory_type,
                            const void* value);
bool has_attribute(hid_t object, const std::string& name);
std::string read_string_attribute(hid_t object, const std::string& name);
std::int64_t read_int_attribute(hid_t object, const std::string& name);
// Any scalar attribute as text: strings as is, numbers in decimal.
std::string read_attribute_as_text(hid_t object, const std::string& name);
// Copies every attribute of `source` to `target`, except the names listed.
void copy_attributes(hid_t source, hid_t target, const std::vector<std::string>& skip);

// Name of the dimension scale attached to dimension `dim` of `dataset`, or
// "" when none is.
std::string attached_scale_name(hid_t dataset, unsigned dim);

} // namespace collapse::storage::detail
