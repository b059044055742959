#include "collapse/storage/result_reader.hpp"

#include <hdf5_hl.h>

#include <algorithm>

#include "collapse/storage/flat_boxes.hpp"
#include "file_lock.hpp"
#include "hdf5_util.hpp"
#include "hostile_input.hpp"

namespace collapse::storage {

using namespace detail;

namespace {

// Every read of the reader's file: HDF5's own error printing off, and a crash
// inside HDF5 taken as the file's damage (hostile_input.hpp).
struct GuardedRead {
    explicit GuardedRead(const std::string& what) : untrusted(what) {}
    QuietErrors quiet;
    UntrustedRead untrusted;
};

} // namespace

struct ResultReader::State {
    std::string path;
    Handle file;
    bool swmr = false;
};

ResultReader::ResultReader(const std::string& path) : state_(std::make_unique<State>()) {
    QuietErrors quiet;
    state_->path = path;
    check_hdf5_file(path);
    const MetadataDeadline deadline("opening " + path);
    const Handle access = bounded_read_access();
    // A live writer rewrites the file's chunk indices at every batch; a plain
    // reader keeps the metadata it saw at open and can then follow stale
    // addresses ("addr overflow"). SWMR reading refreshes them.
    hid_t file = H5I_INVALID_HID;
    if (is_being_written(path)) {
        file = H5Fopen(path.c_str(), H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, access.get());
        state_->swmr = file >= 0;
        if (file < 0) take_error_stack();
    }
    if (file < 0) file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, access.get());
    if (file < 0) {
        // A writer that was killed (or is still running) leaves the superblock
        // marked open for writing; HDF5 then only allows SWMR reading, which
        // sees exactly what the writer had flushed. Any other failure (a bad
        // checksum, a truncation) is final: SWMR reading would only retry it.
        const std::string plain_error = take_error_stack();
        if (!open_refused_for_writer(plain_error)) throw StorageError("cannot open " + path + " (" + plain_error + ")");
        file = H5Fopen(path.c_str(), H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, access.get());
        if (file < 0) fail("cannot open " + path + " (" + plain_error + ")");
        state_->swmr = true;
    }
    state_->file = Handle(file, H5Fclose);
    if (!detail::has_attribute(file, "format") || read_string_attribute(file, "format") != "collapse-sweep")
        throw StorageError(path + " is not a collapse-sweep output file");
}

ResultReader::~ResultReader() = default;

std::string ResultReader::spec_text() const { return attribute("spec"); }

std::vector<std::string> ResultReader::spec_overrides() const {
    const std::string joined = attribute("spec_overrides");
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (start < joined.size()) {
        const std::size_t newline = joined.find('\n', start);
        lines.push_back(joined.substr(start, newline == std::string::npos ? std::string::npos : newline - start));
        if (newline == std::string::npos) break;
        start = newline + 1;
    }
    return lines;
}

std::string ResultReader::spec_sha256() const { return attribute("spec_sha256"); }

std::string ResultReader::attribute(const std::string& name) const {
    const GuardedRead guarded("reading " + state_->path);
    if (!detail::has_attribute(state_->file.get(), name)) throw StorageError(state_->path + " has no attribute " + name);
    return read_attribute_as_text(state_->file.get(), name);
}

bool ResultReader::has_attribute(const std::string& name) const {
    return detail::has_attribute(state_->file.get(), name);
}

std::string ResultReader::object_attribute(const std::string& object_path, const std::string& name) const {
    const GuardedRead guarded("reading " + state_->path);
    if (!detail::link_exists(state_->file.get(), object_path)) return "";
    Handle object = detail::checked(H5Oopen(state_->file.get(), object_path.c_str(), H5P_DEFAULT), H5Oclose,
                                    "cannot open " + object_path + " in " + state_->path);
    if (!detail::has_attribute(object.get(), name)) return "";
    return read_attribute_as_text(object.get(), name);
}

ShardRange ResultReader::shard() const {
    const GuardedRead guarded("reading " + state_->path);
    const hid_t file = state_->file.get();
    return {read_int_attribute(file, "shard_index"), read_int_attribute(file, "shard_count"),
            read_int_attribute(file, "shard_begin"), read_int_attribute(file, "shard_end")};
}

std::vector<std::string> ResultReader::axis_names() const {
    const GuardedRead guarded("reading " + state_->path);
    Handle status = open_dataset(state_->file.get(), "/results/status");
    std::vector<std::string> names;
    const std::size_t rank = dataset_dims(status.get()).size();
    for (unsigned d = 0; d < rank; ++d) {
        names.push_back(attached_scale_name(status.get(), d));
        if (names.back().empty())
            throw StorageError(state_->path + ": dimension " + std::to_string(d) + " of /results/status has no scale");
    }
    return names;
}

std::vector<std::vector<double>> ResultReader::axis_values() const {
    std::vector<std::vector<double>> values;
    for (const std::string& name : axis_names()) values.push_back(read_doubles("/results/" + name));
    return values;
}

std::vector<std::int64_t> ResultReader::shape() const { return dataset_shape("/results/status"); }

std::int64_t ResultReader::size() const {
    std::int64_t size = 1;
    for (std::int64_t length : shape()) size *= length;
    return size;
}

std::vector<std::int8_t> ResultReader::status() const {
    const GuardedRead guarded("reading " + state_->path);
    Handle dataset = open_dataset(state_->file.get(), "/results/status");
    std::int64_t count = 1;
    for (std::int64_t length : dataset_dims(dataset.get())) count *= length;
    std::vector<std::int8_t> values(static_cast<std::size_t>(count));
    check(H5Dread(dataset.get(), H5T_NATIVE_INT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()),
          state_->path + ": cannot read /results/status");
    return values;
}

std::array<std::int64_t, 4> ResultReader::status_counts() const {
    const GuardedRead guarded("reading " + state_->path);
    Handle dataset = open_dataset(state_->file.get(), "/results/status");
    const std::vector<std::int64_t> shape = dataset_dims(dataset.get());
    std::int64_t size = 1;
    for (std::int64_t length : shape) size *= length;
    // One H5Dread over the whole grid held ~4 KB of HDF5 bookkeeping per
    // chunk besides the values: 1.7 GB for 2 x 10^8 trajectories.
    constexpr std::int64_t block_size = 1 << 20;
    std::array<std::int64_t, 4> counts{};
    std::vector<std::int8_t> block;
    for (std::int64_t first = 0; first < size; first += block_size) {
        const std::int64_t count = std::min(block_size, size - first);
        Handle file_space = checked(H5Dget_space(dataset.get()), H5Sclose, state_->path + ": cannot get a dataspace");
        check(H5Sselect_none(file_space.get()), "cannot reset a selection");
        for (const GridBox& box : flat_range_boxes(shape, first, first + count)) {
            const std::vector<hsize_t> start = to_hsize(box.start), extent = to_hsize(box.count);
            check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_OR, start.data(), nullptr, extent.data(), nullptr),
                  state_->path + ": cannot select in /results/status");
        }
        const auto length = static_cast<hsize_t>(count);
        Handle memory_space = checked(H5Screate_simple(1, &length, nullptr), H5Sclose, "cannot make a dataspace");
        block.resize(static_cast<std::size_t>(count));
        check(H5Dread(dataset.get(), H5T_NATIVE_INT8, memory_space.get(), file_space.get(), H5P_DEFAULT, block.data()),
              state_->path + ": cannot read /results/status");
        for (std::int8_t s : block) ++counts[s < 0 ? 0 : std::min<int>(s, 2) + 1];
    }
    return counts;
}

std::vector<double> ResultReader::result(const std::string& name) const { return read_doubles("/results/" + name); }
std::vector<double> ResultReader::trace(const std::string& name) const { return read_doubles("/traces/" + name); }
std::vector<double> ResultReader::final_dataset(const std::string& name) const {
    return read_doubles("/final/" + name);
}
std::vector<std::int64_t> ResultReader::record_steps() const { return read_integers("/traces/step"); }

bool ResultReader::has_dataset(const std::string& path) const {
    const GuardedRead guarded("reading " + state_->path);
    return link_exists(state_->file.get(), path);
}

std::vector<std::int64_t> ResultReader::dataset_shape(const std::string& path) const {
    const GuardedRead guarded("reading " + state_->path);
    Handle dataset = open_dataset(state_->file.get(), path);
    return dataset_dims(dataset.get());
}

namespace {

template <class Value>
std::vector<Value> read_all(hid_t file, const std::string& file_path, const std::string& path, hid_t memory_type) {
    const GuardedRead guarded("reading " + path + " of " + file_path);
    if (!link_exists(file, path)) throw StorageError(file_path + " has no dataset " + path);
    Handle dataset = open_dataset(file, path);
    std::int64_t count = 1;
    for (std::int64_t length : dataset_dims(dataset.get())) count *= length;
    std::vector<Value> values(static_cast<std::size_t>(count));
    if (count > 0)
        check(H5Dread(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()),
              file_path + ": cannot read " + path);
    return values;
}

} // namespace

std::vector<double> ResultReader::read_doubles(const std::string& path) const {
    return read_all<double>(state_->file.get(), state_->path, path, H5T_NATIVE_DOUBLE);
}

std::vector<std::int64_t> ResultReader::read_integers(const std::string& path) const {
    return read_all<std::int64_t>(state_->file.get(), state_->path, path, H5T_NATIVE_INT64);
}

bool ResultReader::opened_with_swmr() const { return state_->swmr; }

} // namespace collapse::storage
