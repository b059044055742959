// Internals of ResultWriter shared by its translation units:
// writer_setup.cpp builds a new file's structure, result_writer.cpp creates,
// resumes and keeps the write windows, batch_writes.cpp writes,
// coalesced_writes.cpp decides when staged chunks are stored.
#pragma once

#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "collapse/storage/result_writer.hpp"
#include "file_lock.hpp"
#include "hdf5_util.hpp"
#include "layout.hpp"
#include "staged_chunks.hpp"

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

    // Coalesced writes (ResultWriter::coalesce_writes): finished chunks,
    // staged and compressed, wait in `pending` for the next window, which
    // opens at most `coalesce_seconds` after the last one closed. `mutex`
    // guards everything here and every HDF5 call of the writer: `flusher`
    // stores what is due while the caller's thread waits for its next batch.
    detail::PendingChunks pending;
    std::int64_t pending_finished = 0;     // status >= 0 in `pending`
    double coalesce_seconds = 0;           // 0: every batch has its own window
    std::chrono::steady_clock::time_point last_window_end{};
    std::mutex mutex;
    std::condition_variable changed;
    std::thread flusher;
    bool stopping = false;
    std::exception_ptr flush_error;        // the flusher's failure, for the caller's next call
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

// Coalesced writes (coalesced_writes.cpp), with state.mutex held:
// adds staged chunks (and the finished trajectories they hold) to
// state.pending;
void add_pending(ResultWriter::State& state, std::vector<StagedChunk> chunks, std::int64_t finished);
// stores them in a window now if none closed within coalesce_seconds (or
// coalescing is off), else leaves them to the flusher thread;
void store_if_due(ResultWriter::State& state);
// stores them now, in one window: data, flush, then /results/status.
void store_pending(ResultWriter::State& state);
// rethrows (once) what failed on the flusher thread.
void rethrow_flush_error(ResultWriter::State& state);
// Without state.mutex: stops the flusher thread and waits for it.
void stop_flusher(ResultWriter::State& state);

// Writes every root attribute, group, dimension scale and (empty, fill-valued)
// dataset of `layout` into a freshly created file, and attaches the scales.
// Leaves nothing open, as H5Fstart_swmr_write wants.
void build_file_structure(hid_t file, const SweepSpec& spec, const FileLayout& layout, const Provenance& provenance,
                          const ShardRange& shard);

// Root attributes describing the run (spec, model settings, provenance).
void write_root_attributes(hid_t file, const SweepSpec& spec, const Provenance& provenance, const ShardRange& shard);

} // namespace detail
} // namespace collapse::storage
