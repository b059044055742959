#include "collapse/storage/merge.hpp"

#include <hdf5_hl.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>

#include "collapse/storage/flat_boxes.hpp"
#include "collapse/storage/format.hpp"
#include "collapse/storage/result_reader.hpp"
#include "collapse/storage/status_ownership.hpp"
#include "file_lock.hpp"
#include "hdf5_util.hpp"
#include "hostile_input.hpp"
#include "layout.hpp"

namespace collapse::storage {

using namespace detail;
namespace fs = std::filesystem;

namespace {

struct ShardFile {
    std::string path;
    std::string source_name; // as the virtual datasets name it: relative to the merged file's folder
    ShardRange range;
};

std::string range_text(std::int64_t begin, std::int64_t end) {
    return "[" + std::to_string(begin) + ", " + std::to_string(end) + ")";
}

// Relative names keep the merged file working when its folder moves with the
// shards; HDF5 resolves them against the virtual file's own folder.
std::string source_name_for(const std::string& shard_path, const std::string& out_path) {
    const fs::path shard = fs::weakly_canonical(fs::absolute(shard_path));
    const fs::path folder = fs::weakly_canonical(fs::absolute(out_path)).parent_path();
    const fs::path relative = shard.lexically_relative(folder);
    return relative.empty() ? shard.string() : relative.string();
}

// Static shards: each declared range is the file's; they must tile the grid.
void check_coverage(std::vector<ShardFile>& shards, std::int64_t grid_size) {
    std::sort(shards.begin(), shards.end(), [](const ShardFile& a, const ShardFile& b) {
        return a.range.begin != b.range.begin ? a.range.begin < b.range.begin : a.range.end < b.range.end;
    });
    std::int64_t covered = 0;
    const ShardFile* previous = nullptr;
    for (const ShardFile& shard : shards) {
        if (shard.range.begin > covered)
            throw StorageError("flat indices " + range_text(covered, shard.range.begin) +
                               " are in no shard (before " + shard.path + ")");
        if (shard.range.begin < covered)
            throw StorageError("shards " + previous->path + " and " + shard.path + " overlap on flat indices " +
                               range_text(shard.range.begin, std::min(covered, shard.range.end)));
        covered = shard.range.end;
        previous = &shard;
    }
    if (covered < grid_size)
        throw StorageError("flat indices " + range_text(covered, grid_size) + " are in no shard (after " +
                           previous->path + ")");
}

// MPI rank files: one per rank 0..R-1, ownership from their statuses.
std::vector<OwnedRun> rank_file_runs(std::vector<ShardFile>& shards) {
    std::sort(shards.begin(), shards.end(),
              [](const ShardFile& a, const ShardFile& b) { return a.range.index < b.range.index; });
    const std::int64_t ranks = shards.front().range.count;
    for (const ShardFile& shard : shards)
        if (shard.range.count != ranks)
            throw StorageError(shard.path + " is a rank file of a " + std::to_string(shard.range.count) +
                               "-rank run, " + shards.front().path + " of a " + std::to_string(ranks) + "-rank run");
    for (std::size_t s = 0; s < shards.size(); ++s) {
        const auto expected = static_cast<std::int64_t>(s);
        if (shards[s].range.index == expected) continue;
        if (shards[s].range.index < expected)
            throw StorageError(shards[s].path + " and " + shards[s - 1].path + " are both rank " +
                               std::to_string(shards[s].range.index));
        break; // a gap: reported below
    }
    for (std::int64_t rank = 0; rank < ranks; ++rank)
        if (static_cast<std::size_t>(rank) >= shards.size() || shards[static_cast<std::size_t>(rank)].range.index != rank)
            throw StorageError("the rank file of rank " + std::to_string(rank) + " of " + std::to_string(ranks) +
                               " is missing");
    if (shards.size() != static_cast<std::size_t>(ranks))
        throw StorageError("more rank files than the " + std::to_string(ranks) + " ranks of the run");
    std::vector<std::vector<std::int8_t>> statuses;
    std::vector<std::string> names;
    for (const ShardFile& shard : shards) {
        statuses.push_back(ResultReader(shard.path).status());
        names.push_back(shard.path);
    }
    return runs_by_status(statuses, names);
}

herr_t collect_link_name(hid_t, const char* name, const H5L_info_t*, void* client_data) {
    static_cast<std::vector<std::string>*>(client_data)->emplace_back(name);
    return 0;
}

std::vector<std::string> link_names(hid_t group) {
    std::vector<std::string> names;
    check(H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_link_name, &names), "cannot list a group");
    return names;
}

bool is_group(hid_t location, const std::string& name) {
    Handle object = checked(H5Oopen(location, name.c_str(), H5P_DEFAULT), H5Oclose, "cannot open /" + name);
    return H5Iget_type(object.get()) == H5I_GROUP;
}

// A chunked scale (a counting one: seed, class, ...) is copied chunk by
// chunk as stored, without decompressing: 10^8 seeds took 28 s and 800 MB
// per group to read and compress again.
void copy_chunks_raw(hid_t source, hid_t copy, hid_t creation, hsize_t length, const std::string& name) {
    hsize_t chunk = 0;
    if (H5Pget_chunk(creation, 1, &chunk) != 1 || chunk == 0) fail("cannot read the chunking of scale " + name);
    std::vector<unsigned char> bytes;
    for (hsize_t offset = 0; offset < length; offset += chunk) {
        hsize_t size = 0;
        if (H5Dget_chunk_storage_size(source, &offset, &size) < 0 || size == 0) {
            take_error_stack(); // never written: it reads as the fill value in the copy too
            continue;
        }
        bytes.resize(static_cast<std::size_t>(size));
        std::uint32_t filter_mask = 0;
        check(H5Dread_chunk(source, H5P_DEFAULT, &offset, &filter_mask, bytes.data()), "cannot read scale " + name);
        check(H5Dwrite_chunk(copy, H5P_DEFAULT, filter_mask, &offset, bytes.size(), bytes.data()),
              "cannot write scale " + name);
    }
}

Handle copy_scale(hid_t source, hid_t target_group, const std::string& name) {
    Handle file_type = checked(H5Dget_type(source), H5Tclose, "cannot read the type of scale " + name);
    Handle memory_type = checked(H5Tget_native_type(file_type.get(), H5T_DIR_ASCEND), H5Tclose, "cannot copy " + name);
    Handle space = checked(H5Dget_space(source), H5Sclose, "cannot copy " + name);
    const auto points = static_cast<std::size_t>(H5Sget_simple_extent_npoints(space.get()));
    // The source's creation list: a counting scale stays chunked and compressed.
    Handle creation = checked(H5Dget_create_plist(source), H5Pclose, "cannot read the layout of " + name);
    Handle copy = checked(H5Dcreate2(target_group, name.c_str(), file_type.get(), space.get(), H5P_DEFAULT,
                                     creation.get(), H5P_DEFAULT),
                          H5Dclose, "cannot create scale " + name);
    if (points > 0 && H5Sget_simple_extent_ndims(space.get()) == 1 && H5Pget_layout(creation.get()) == H5D_CHUNKED) {
        copy_chunks_raw(source, copy.get(), creation.get(), points, name);
    } else if (points > 0) {
        std::vector<unsigned char> values(points * H5Tget_size(memory_type.get()));
        check(H5Dread(source, memory_type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), "cannot read " + name);
        check(H5Dwrite(copy.get(), memory_type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()),
              "cannot write scale " + name);
    }
    check(H5DSset_scale(copy.get(), name.c_str()), "cannot make " + name + " a dimension scale");
    copy_attributes(source, copy.get(), {"CLASS", "NAME", "REFERENCE_LIST", "DIMENSION_LIST"});
    return copy;
}

// A virtual dataset with the first shard's type, shape and fill value, mapping
// every run's boxes to its shard (gridded) or the first shard's whole dataset
// (per seed).
Handle create_virtual(hid_t source, hid_t target_group, const std::string& group, const std::string& name,
                      const std::vector<ShardFile>& shards, const std::vector<OwnedRun>& runs,
                      const std::vector<std::int64_t>& grid_shape) {
    const std::string path = "/" + group + "/" + name;
    Handle file_type = checked(H5Dget_type(source), H5Tclose, "cannot read the type of " + path);
    const std::vector<std::int64_t> dims = dataset_dims(source);
    const std::vector<hsize_t> extent = to_hsize(dims);
    const int rank = static_cast<int>(dims.size());
    Handle properties = checked(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, "cannot make a property list");
    {
        Handle source_properties = checked(H5Dget_create_plist(source), H5Pclose, "cannot read " + path);
        std::vector<unsigned char> fill(H5Tget_size(file_type.get()));
        check(H5Pget_fill_value(source_properties.get(), file_type.get(), fill.data()), "cannot read fill of " + path);
        check(H5Pset_fill_value(properties.get(), file_type.get(), fill.data()), "cannot set fill of " + path);
    }
    auto map_box = [&](const ShardFile& shard, std::vector<hsize_t> start, std::vector<hsize_t> count) {
        Handle space = checked(H5Screate_simple(rank, extent.data(), nullptr), H5Sclose, "cannot make a dataspace");
        check(H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr),
              "cannot select in " + path);
        // Shard files hold full-grid-shape datasets: the same selection on both sides.
        check(H5Pset_virtual(properties.get(), space.get(), shard.source_name.c_str(), path.c_str(), space.get()),
              "cannot map " + path + " of " + shard.path);
    };
    if (is_per_seed(group, name)) {
        map_box(shards.front(), std::vector<hsize_t>(dims.size(), 0), extent);
    } else {
        const std::size_t grid_rank = grid_shape.size();
        if (dims.size() < grid_rank || !std::equal(grid_shape.begin(), grid_shape.end(), dims.begin()))
            throw StorageError(shards.front().path + ": " + path + " does not have the grid's leading shape");
        for (const OwnedRun& run : runs)
            for (const GridBox& box : flat_range_boxes(grid_shape, run.begin, run.end)) {
                std::vector<hsize_t> start(dims.size(), 0), count = extent;
                std::copy(box.start.begin(), box.start.end(), start.begin());
                std::copy(box.count.begin(), box.count.end(), count.begin());
                map_box(shards[run.file], start, count);
            }
    }
    Handle space = checked(H5Screate_simple(rank, extent.data(), nullptr), H5Sclose, "cannot make a dataspace");
    return checked(H5Dcreate2(target_group, name.c_str(), file_type.get(), space.get(), H5P_DEFAULT,
                              properties.get(), H5P_DEFAULT),
                   H5Dclose, "cannot create virtual dataset " + path);
}

void write_merged_file(hid_t out, hid_t first, const std::vector<ShardFile>& shards, const std::vector<OwnedRun>& runs,
                       const std::vector<std::int64_t>& grid_shape, std::int64_t grid_size) {
    copy_attributes(first, out, {});
    write_int_attribute(out, "shard_index", 0, H5T_STD_I64LE);
    write_int_attribute(out, "shard_count", 1, H5T_STD_I64LE);
    write_int_attribute(out, "shard_begin", 0, H5T_STD_I64LE);
    write_int_attribute(out, "shard_end", grid_size, H5T_STD_I64LE);
    std::string sources;
    for (const ShardFile& shard : shards) sources += (sources.empty() ? "" : "\n") + shard.source_name;
    write_string_attribute(out, "merged_shards", sources);
    write_string_attribute(out, "merge_time", utc_timestamp());

    for (const std::string& group_name : link_names(first)) {
        if (!is_group(first, group_name)) continue;
        Handle source_group = open_group(first, group_name);
        Handle group = checked(H5Gcreate2(out, group_name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose,
                               "cannot create group /" + group_name);
        copy_attributes(source_group.get(), group.get(), {}); // the group's settings
        std::map<std::string, Handle> scales;
        std::vector<std::string> data_names;
        for (const std::string& name : link_names(source_group.get())) {
            Handle source = open_dataset(source_group.get(), name);
            if (H5DSis_scale(source.get()) > 0) scales.emplace(name, copy_scale(source.get(), group.get(), name));
            else data_names.push_back(name);
        }
        for (const std::string& name : data_names) {
            Handle source = open_dataset(source_group.get(), name);
            Handle merged = create_virtual(source.get(), group.get(), group_name, name, shards, runs, grid_shape);
            copy_attributes(source.get(), merged.get(), {"CLASS", "NAME", "REFERENCE_LIST", "DIMENSION_LIST"});
            const std::size_t rank = dataset_dims(source.get()).size();
            for (unsigned d = 0; d < rank; ++d) {
                const std::string scale = attached_scale_name(source.get(), d);
                if (scale.empty()) continue;
                if (!scales.contains(scale))
                    throw StorageError("/" + group_name + "/" + name + " uses scale " + scale + " not in its group");
                check(H5DSattach_scale(merged.get(), scales.at(scale).get(), d), "cannot attach scale " + scale);
            }
        }
    }
}

// The grid axes' values without `seed`, whose coordinate is 0 .. seeds - 1
// (the shape holds its length): 10^8 seeds would be 800 MB to read and compare.
std::vector<std::vector<double>> axis_values_but_seed(const ResultReader& shard) {
    std::vector<std::vector<double>> values;
    for (const std::string& name : shard.axis_names())
        if (name != "seed") values.push_back(shard.read_doubles("/results/" + name));
    return values;
}

} // namespace

MergeReport merge_shards(const std::string& out_path, const std::vector<std::string>& shard_paths, bool overwrite) {
    if (shard_paths.empty()) throw StorageError("merge needs at least one shard file");
    std::vector<ShardFile> shards;
    std::string hash;
    std::vector<std::string> axis_names;
    std::vector<std::vector<double>> axis_values;
    std::vector<std::int64_t> grid_shape;
    for (const std::string& path : shard_paths) {
        if (is_being_written(path))
            throw StorageError(path + " is being written by another process; merge it once that run has ended");
        const ResultReader shard(path);
        if (shard.opened_with_swmr())
            throw StorageError(path + " was not closed cleanly (its writer was killed or is still running); finish "
                                      "it with `collapse-sweep run --resume` first");
        if (shards.empty()) {
            hash = shard.spec_sha256();
            axis_names = shard.axis_names();
            axis_values = axis_values_but_seed(shard);
            grid_shape = shard.shape();
        } else if (shard.spec_sha256() != hash) {
            throw StorageError(path + " was written by a different spec than " + shards.front().path +
                               " (spec_sha256 differs)");
        } else if (shard.axis_names() != axis_names || axis_values_but_seed(shard) != axis_values ||
                   shard.shape() != grid_shape) {
            throw StorageError(path + " has a different grid than " + shards.front().path);
        }
        shards.push_back({path, source_name_for(path, out_path), shard.shard()});
    }
    std::int64_t grid_size = 1;
    for (std::int64_t length : grid_shape) grid_size *= length;
    const auto rank_files = static_cast<std::size_t>(std::count_if(
        shards.begin(), shards.end(), [&](const ShardFile& shard) { return is_rank_file(shard.range, grid_size); }));
    std::vector<OwnedRun> runs;
    if (rank_files == 0) {
        check_coverage(shards, grid_size);
        for (std::size_t s = 0; s < shards.size(); ++s) runs.push_back({s, shards[s].range.begin, shards[s].range.end});
    } else if (rank_files < shards.size()) {
        throw StorageError("cannot mix MPI rank files with static shards or whole-grid files");
    } else {
        runs = rank_file_runs(shards);
    }

    for (const ShardFile& shard : shards)
        if (fs::exists(out_path) && fs::equivalent(out_path, shard.path))
            throw StorageError("merge output " + out_path + " is one of the shards");
    if (fs::exists(out_path)) {
        if (!overwrite) throw StorageError(out_path + " already exists; use --overwrite to replace it");
        FileLock::acquire(out_path); // refuse early a file a live writer owns; publish_file checks again
    }

    // Built under a temporary name in the same folder (the shards' relative
    // names stay right) and renamed into place under the writer lock: a kill
    // at any moment leaves the previous OUT.h5 or the new complete one.
    const std::string temporary = out_path + ".merging-" + std::to_string(::getpid());
    std::error_code ignored;
    fs::remove(temporary, ignored);
    const int descriptor = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (descriptor < 0) throw StorageError("cannot create " + out_path + ": " + std::strerror(errno));
    ::close(descriptor);
    const RemoveOnFatalExit unfinished(temporary);
    try {
        QuietErrors quiet;
        const FileLock lock = FileLock::acquire(temporary);
        Handle first = checked(H5Fopen(shards.front().path.c_str(), H5F_ACC_RDONLY, bounded_read_access().get()), H5Fclose,
                               "cannot open " + shards.front().path);
        Handle access = checked(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, "cannot make a file access list");
        // Virtual datasets need the 1.10 format; nothing newer is required.
        check(H5Pset_libver_bounds(access.get(), H5F_LIBVER_V110, H5F_LIBVER_V110), "cannot set format bounds");
        Handle out = checked(H5Fcreate(temporary.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, access.get()), H5Fclose,
                             "cannot create " + out_path);
        {
            // The walk over the first shard's groups, links and scales reads it whole.
            const UntrustedRead untrusted("reading the layout of " + shards.front().path);
            write_merged_file(out.get(), first.get(), shards, runs, grid_shape, grid_size);
        }
        if (!out.reset()) fail("cannot close " + out_path);
        publish_file(temporary, out_path, overwrite);
    } catch (...) {
        fs::remove(temporary, ignored);
        throw;
    }

    MergeReport report;
    report.trajectories = grid_size;
    report.not_run = ResultReader(out_path).status_counts()[0];
    return report;
}

} // namespace collapse::storage
