#include "collapse/storage/state_snapshots.hpp"

#include <hdf5_hl.h>

#include "hdf5_util.hpp"

namespace collapse::storage {
namespace {

using detail::check;
using detail::checked;
using detail::Handle;

Handle write_dataset(hid_t group, const std::string& name, const std::vector<hsize_t>& dims, hid_t memory_type,
                     const void* data, const std::string& units, const std::string& long_name) {
    Handle space = checked(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose,
                           "cannot make a dataspace for /states/" + name);
    const hid_t file_type = memory_type == H5T_NATIVE_DOUBLE ? H5T_IEEE_F64LE : H5T_STD_I64LE;
    Handle dataset = checked(H5Dcreate2(group, name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT,
                                        H5P_DEFAULT),
                             H5Dclose, "cannot create /states/" + name);
    check(H5Dwrite(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), "cannot write /states/" + name);
    detail::write_string_attribute(dataset.get(), "units", units);
    detail::write_string_attribute(dataset.get(), "long_name", long_name);
    return dataset;
}

} // namespace

void write_state_snapshots(const std::string& path, const StateSnapshots& s) {
    detail::QuietErrors quiet;
    const auto count = static_cast<hsize_t>(s.step.size());
    const auto N = static_cast<hsize_t>(s.samples), K = static_cast<hsize_t>(s.classes), d = static_cast<hsize_t>(s.dim),
               h = static_cast<hsize_t>(s.head_dim), p = static_cast<hsize_t>(s.input_dim);
    const hsize_t first = p > 0 ? d * p : N * d, state_size = first + K * d + 2 * h * d;
    if (s.requested_step.size() != count || s.states.size() != count * state_size)
        throw StorageError("write_state_snapshots: " + std::to_string(s.states.size()) + " state values for " +
                           std::to_string(count) + " steps of " + std::to_string(state_size));

    Handle file = checked(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose, "cannot open " + path);
    if (detail::link_exists(file.get(), "/states")) check(H5Ldelete(file.get(), "/states", H5P_DEFAULT), "cannot replace /states");
    Handle group = checked(H5Gcreate2(file.get(), "states", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose,
                           "cannot create /states in " + path);
    Handle step = write_dataset(group.get(), "step", {count}, H5T_NATIVE_INT64, s.step.data(), "steps",
                                "step the state is at (the stopping step when the run stopped before the request)");
    check(H5DSset_scale(step.get(), "step"), "cannot make /states/step a dimension scale");
    std::vector<Handle> data;
    data.push_back(write_dataset(group.get(), "requested_step", {count}, H5T_NATIVE_INT64, s.requested_step.data(),
                                 "steps", "step asked for with --state-at"));

    // Each block of the state as its own array [S, rows, cols].
    const auto block = [&](const std::string& name, hsize_t offset, hsize_t rows, hsize_t cols, const std::string& what) {
        std::vector<double> values;
        values.reserve(count * rows * cols);
        for (hsize_t k = 0; k < count; ++k)
            values.insert(values.end(), s.states.begin() + static_cast<std::ptrdiff_t>(k * state_size + offset),
                          s.states.begin() + static_cast<std::ptrdiff_t>(k * state_size + offset + rows * cols));
        data.push_back(write_dataset(group.get(), name, {count, rows, cols}, H5T_NATIVE_DOUBLE, values.data(), "1", what));
    };
    if (p > 0) block("encoder", 0, d, p, "trained linear encoder E");
    else block("sample_embeddings", 0, N, d, "sample embeddings x_i");
    block("label_embeddings", first, K, d, "label embeddings y_k");
    if (h > 0) {
        block("head_A", first + K * d, h, d, "projection head factor A");
        block("head_B", first + K * d + h * d, d, h, "projection head factor B");
    }
    for (const Handle& dataset : data)
        check(H5DSattach_scale(dataset.get(), step.get(), 0), "cannot attach /states/step");
    group.reset();
    step.reset();
    data.clear();
    if (!file.reset()) throw StorageError("cannot close " + path + " after writing /states");
}

} // namespace collapse::storage
