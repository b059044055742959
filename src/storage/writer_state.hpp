// Internals of ResultWriter shared by its two translation units:
// writer_setup.cpp builds a new file's structure, result_writer.cpp opens,
// resumes and writes.
#pragma once

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
    detail::FileLock lock;
    detail::Handle file;
    std::map<std::string, detail::Handle> datasets; // by path, e.g. "/results/status"
    bool closed = false;
};

namespace detail {

// File access list with the latest format, which SWMR requires.
Handle latest_format_access();

// Writes every root attribute, group, dimension scale and (empty, fill-valued)
// dataset of `layout` into a freshly created file, and attaches the scales.
// Leaves nothing open, as H5Fstart_swmr_write wants.
void build_file_structure(hid_t file, const SweepSpec& spec, const FileLayout& layout, const Provenance& provenance,
                          const ShardRange& shard);

// Root attributes describing the run (spec, model settings, provenance).
void write_root_attributes(hid_t file, const SweepSpec& spec, const Provenance& provenance, const ShardRange& shard);

} // namespace detail
} // namespace collapse::storage
