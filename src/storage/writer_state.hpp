// Internals of ResultWriter shared by its translation units:
// writer_setup.cpp builds a new file's structure, result_writer.cpp creates,
// resumes and keeps the write windows, batch_writes.cpp writes.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "collapse/storage/result_writer.hpp"
#include "file_lock.hpp"
#include "hdf5_util.hpp"
#include "layout.hpp"

namespace collapse::storage {

struct ResultWriter::State {
    std::string path;
    detail::FileLayout layout;
    SweepSpec spec; // a copy: the caller's spec need not outlive the writer
    ShardRange shard;
    detail::FileLock lock;             // held from creation (or resume) to close()
    detail::Handle file;               // open only inside a write window
    std::map<std::string, detail::Handle> datasets; // by path, e.g. "/results/status"; inside a window
    std::int64_t safe_trajectories = 0; // status >= 0 in the file, within shard
    std::vector<SeedData> pending_seeds; // collected by write_seed_data, not yet written
    bool failed = false;                // a write failed: no more writes
    bool closed = false;
};

namespace detail {

// File access list with the latest format, which SWMR requires.
Handle latest_format_access();

// latest_format_access without HDF5's own file locking: the writer reopens
// its file for every batch, and a reader's shared lock (h5py, xarray, info)
// must not make that fail. Writers exclude each other with FileLock instead.
Handle writer_access();

// Runs `write` inside a write window: the file is opened for SWMR writing
// (so a kill inside the window leaves a file SWMR readers and --resume
// open), `write` runs, and the file is flushed and closed again, clean on
// disk, unless `keep_open`. On failure the window is closed as well as it
// can be, later writes are refused, and the error says how many
// trajectories are safe; running out of space becomes OutOfSpaceError.
void write_in_window(ResultWriter::State& state, const std::function<void()>& write, bool keep_open = false);
void close_window(ResultWriter::State& state);

// Writes the seeds write_seed_data collected (batch_writes.cpp).
void flush_seed_data(ResultWriter::State& state);

// Writes every root attribute, group, dimension scale and (empty, fill-valued)
// dataset of `layout` into a freshly created file, and attaches the scales.
// Leaves nothing open, as H5Fstart_swmr_write wants.
void build_file_structure(hid_t file, const SweepSpec& spec, const FileLayout& layout, const Provenance& provenance,
                          const ShardRange& shard);

// Root attributes describing the run (spec, model settings, provenance).
void write_root_attributes(hid_t file, const SweepSpec& spec, const Provenance& provenance, const ShardRange& shard);

} // namespace detail
} // namespace collapse::storage
