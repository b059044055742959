#include "collapse/storage/result_writer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <numeric>

#include "collapse/storage/flat_boxes.hpp"
#include "collapse/storage/format.hpp"
#include "hostile_input.hpp"
#include "writer_state.hpp"

namespace collapse::storage {

using namespace detail;

namespace {

// Each dataset's chunk cache holds a few of its chunks, no more. A batch
// writes a dataset in one H5Dwrite, which visits each chunk once, so a chunk
// is compressed once per batch whatever the cache size. A larger cache only
// keeps chunks that are never touched again: with 4 MiB per dataset it grew
// to ~100 MB over the first 5*10^5 trajectories (docs/performance.md, "Memory").
constexpr std::size_t cached_chunks = 4;

Handle dataset_access(const DatasetLayout& dataset) {
    std::size_t chunk_bytes = H5Tget_size(file_type_of(dataset.type));
    for (const std::int64_t extent : dataset.chunk) chunk_bytes *= static_cast<std::size_t>(extent);
    Handle access = checked(H5Pcreate(H5P_DATASET_ACCESS), H5Pclose, "cannot make a dataset access list");
    check(H5Pset_chunk_cache(access.get(), 53, cached_chunks * chunk_bytes, 0.75), "cannot size the chunk cache");
    return access;
}

void open_datasets(ResultWriter::State& state) {
    for (const DatasetLayout& dataset : state.layout.datasets) {
        Handle access = dataset_access(dataset);
        Handle opened = checked(H5Dopen2(state.file.get(), dataset.path().c_str(), access.get()), H5Dclose,
                                state.path + ": missing dataset " + dataset.path() +
                                    " (written by an older collapse-sweep? re-run it with --overwrite)");
        if (dataset_dims(opened.get()) != dataset.shape)
            throw StorageError(state.path + ": " + dataset.path() + " does not have the shape this spec gives");
        state.datasets.emplace(dataset.path(), std::move(opened));
    }
}

ShardRange resolved(ShardRange shard, std::int64_t grid_size) {
    if (shard.end < 0) shard.end = grid_size;
    if (shard.begin < 0 || shard.begin > shard.end || shard.end > grid_size)
        throw StorageError("shard range [" + std::to_string(shard.begin) + ", " + std::to_string(shard.end) +
                           ") is outside the grid of " + std::to_string(grid_size) + " trajectories");
    return shard;
}

// HDF5 reports a failed write(2) with its errno in the error stack text.
enum class SpaceFailure { none, disk_full, file_size_limit };

SpaceFailure space_failure_in(const std::string& text) {
    if (text.find("errno = 27,") != std::string::npos) return SpaceFailure::file_size_limit; // EFBIG
    if (text.find("errno = 28,") != std::string::npos || text.find("errno = 122,") != std::string::npos)
        return SpaceFailure::disk_full; // ENOSPC, EDQUOT
    return SpaceFailure::none;
}

std::string safe_count_text(const ResultWriter::State& state) {
    return std::to_string(state.safe_trajectories) + " of " + std::to_string(state.shard.end - state.shard.begin) +
           " trajectories are safe in the file";
}

void open_window(ResultWriter::State& state) {
    if (state.file) return;
    // The writer reopens its file by name for every window: make sure the
    // name still leads to the file it created and locked.
    if (!state.lock.names_locked_file(state.path))
        throw StorageError(state.path + " was moved, removed or replaced while the sweep was writing it");
    Handle access = writer_access();
    state.file = checked(H5Fopen(state.path.c_str(), H5F_ACC_RDWR | H5F_ACC_SWMR_WRITE, access.get()), H5Fclose,
                         "cannot open " + state.path + " for writing");
    open_datasets(state);
}

} // namespace

namespace detail {

Handle writer_access() {
    Handle access = latest_format_access();
#if H5_VERSION_GE(1, 10, 7)
    check(H5Pset_file_locking(access.get(), false, true), "cannot turn HDF5 file locking off");
#endif
    return access;
}

void close_window(ResultWriter::State& state) {
    state.datasets.clear();
    if (state.file && !state.file.reset()) fail(state.path + ": closing the file failed");
}

void write_in_window(ResultWriter::State& state, const std::function<void()>& write, bool keep_open) {
    if (state.failed)
        throw StorageError(state.path + ": an earlier write failed (" + safe_count_text(state) +
                           "; run again with --resume)");
    try {
        open_window(state);
        write();
        if (!keep_open) close_window(state);
    } catch (const StorageError& error) {
        // After a failed write HDF5's caches may hold metadata that points at
        // chunks that never reached the disk; closing (or flushing) would
        // write it, and after a full disk it wrote a superblock whose end of
        // file lies past the real end, which no reader then opens. So the
        // file is abandoned as it is on disk, exactly as a killed writer
        // leaves it (SWMR-readable, resumable), and nothing more is written.
        state.failed = true;
        const std::string detail = error.what();
        for (auto& [name, dataset] : state.datasets) dataset.abandon();
        state.datasets.clear();
        state.file.abandon();
        switch (space_failure_in(detail)) {
        case SpaceFailure::disk_full:
            throw OutOfSpaceError("disk full writing " + state.path + " (" + safe_count_text(state) +
                                  "; free space and run again with --resume)");
        case SpaceFailure::file_size_limit:
            throw OutOfSpaceError("file size limit reached writing " + state.path + " (" + safe_count_text(state) +
                                  "; raise the limit (ulimit -f) and run again with --resume)");
        case SpaceFailure::none:
            break;
        }
        throw StorageError(detail + " (" + safe_count_text(state) + "; run again with --resume once fixed)");
    }
}

} // namespace detail

void skip_hdf5_cleanup_at_exit() { H5dont_atexit(); }

ResultWriter::ResultWriter(std::unique_ptr<State> state) : state_(std::move(state)) {}

ResultWriter::~ResultWriter() {
    try {
        close();
    } catch (...) {
        // A destructor must not throw; callers who care call close().
    }
}

std::unique_ptr<ResultWriter> ResultWriter::create(const std::string& path, const SweepSpec& spec, const Grid& grid,
                                                   const Provenance& provenance, ShardRange shard, bool overwrite,
                                                   const SeedSource& seeds) {
    QuietErrors quiet;
    auto state = std::make_unique<State>();
    state->path = path;
    state->spec = spec;
    state->layout = describe_layout(spec, grid);
    state->shard = resolved(shard, grid.size());
    if (std::filesystem::exists(path)) {
        if (!overwrite) throw StorageError(path + " already exists; use --overwrite to replace it or --resume");
        FileLock::acquire(path); // refuse early a file a live writer owns; publish_file checks again
    }

    // Built complete under a temporary name, closed, and renamed into place:
    // a kill during creation never leaves a half-built file at `path`, and
    // the file at `path` is clean from the first moment.
    const std::string temporary = path + ".creating-" + std::to_string(::getpid());
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    const int descriptor = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (descriptor < 0) throw StorageError("cannot create " + path + ": " + std::strerror(errno));
    ::close(descriptor);
    try {
        state->lock = FileLock::acquire(temporary); // the lock follows the inode through the rename
        Handle access = writer_access();
        Handle file = checked(H5Fcreate(temporary.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, access.get()), H5Fclose,
                              "cannot create " + path);
        build_file_structure(file.get(), spec, state->layout, provenance, state->shard);
        if (!file.reset()) fail("cannot create " + path + ": closing it failed");
        if (seeds && spec.output.save_initial) {
            // Written into the temporary file, through the usual path.
            state->path = temporary;
            ResultWriter filling(std::move(state));
            for (std::int64_t seed = 0; seed < spec.seeds; ++seed) filling.write_seed_data(seeds(seed));
            flush_seed_data(*filling.state_);
            state = std::move(filling.state_);
            state->path = path;
        }
        publish_file(temporary, path, overwrite);
        pause_for_tests("AFTER_PUBLISH");
    } catch (const StorageError& error) {
        std::filesystem::remove(temporary, ignored);
        if (space_failure_in(error.what()) != SpaceFailure::none)
            throw OutOfSpaceError("disk full (or file size limit reached) creating " + path +
                                  "; nothing was written: free space and run again");
        throw;
    } catch (...) {
        std::filesystem::remove(temporary, ignored);
        throw;
    }
    return std::unique_ptr<ResultWriter>(new ResultWriter(std::move(state)));
}

namespace {

// The file of a killed writer still has the "open for writing" flags in its
// superblock and HDF5 refuses to open it for writing. This access list clears
// them on open, as `h5clear -s` does, through the property that tool uses.
// The file must then stay open until its end of allocation is fixed (see
// resume): closing it right away, as h5clear does, would truncate the file
// to the stale end of allocation recorded in the superblock and cut off
// chunks the writer had already finished.
Handle status_clearing_access(const std::string& path) {
    Handle access = writer_access();
    const char* property = "clear_status_flags";
    if (H5Pexist(access.get(), property) <= 0)
        throw StorageError(path + " was left open by a killed writer and this HDF5 cannot clear that; "
                                  "run h5clear -s --increment=0 on it");
    std::size_t size = 0;
    check(H5Pget_size(access.get(), property, &size), "cannot query " + std::string(property));
    std::vector<unsigned char> value(size, 0);
    value[0] = 1; // hbool_t true, whatever its width on this build (little-endian)
    check(H5Pset(access.get(), property, value.data()), "cannot set " + std::string(property));
    // A writer that stopped at a full disk can leave a superblock whose end of
    // allocation lies past the end of the file; h5clear --increment skips
    // HDF5's "truncated file" check the same way.
    const char* skip_eof = "skip_eof_check";
    if (H5Pexist(access.get(), skip_eof) > 0) {
        check(H5Pget_size(access.get(), skip_eof, &size), "cannot query " + std::string(skip_eof));
        std::vector<unsigned char> skip(size, 0);
        skip[0] = 1;
        check(H5Pset(access.get(), skip_eof, skip.data()), "cannot set " + std::string(skip_eof));
    }
    return access;
}

std::string spec_mismatch_reason(hid_t file, const SweepSpec& spec) {
    const std::string stored_text = read_string_attribute(file, "spec");
    const std::string stored_overrides = read_string_attribute(file, "spec_overrides");
    std::string overrides;
    for (std::size_t i = 0; i < spec.overrides.size(); ++i) overrides += (i == 0 ? "" : "\n") + spec.overrides[i];
    std::string reason;
    if (stored_text != spec.source_text) reason = "the spec text differs";
    if (stored_overrides != overrides)
        reason += std::string(reason.empty() ? "" : " and ") + "the --set overrides differ (stored: [" +
                  stored_overrides + "], now: [" + overrides + "])";
    return reason.empty() ? "the spec hash differs" : reason;
}

// A read-only open that neither takes nor respects HDF5's file lock, and
// falls back to SWMR reading for a file whose writer was killed in a window.
Handle open_read_only(const std::string& path) {
    Handle access = writer_access();
    hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, access.get());
    if (file >= 0) return Handle(file, H5Fclose);
    const std::string plain_error = take_error_stack();
    file = H5Fopen(path.c_str(), H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, access.get());
    if (file >= 0) return Handle(file, H5Fclose);
    throw StorageError("cannot resume " + path + ": HDF5 cannot open it (" + plain_error +
                       "); if a writer outside collapse-sweep left it open, `h5clear -s --increment=0 " + path +
                       "` clears that (only when no writer is alive)");
}

// Every check resume makes before it writes anything, on a read-only open.
ShardRange checked_resumable(const std::string& path, const SweepSpec& spec, const FileLayout& layout) {
    if (!std::filesystem::exists(path)) throw StorageError("cannot resume " + path + ": no such file");
    check_hdf5_file(path); // before HDF5 touches it: nothing is written into a file that is not ours
    verify_object_headers(path);
    const MetadataDeadline deadline("opening " + path + " for resuming");
    Handle opened = open_read_only(path);
    const hid_t file = opened.get();
    if (!has_attribute(file, "format") || read_string_attribute(file, "format") != format_name)
        throw StorageError(path + " is not a collapse-sweep output file");
    if (read_int_attribute(file, "format_version") != format_version)
        throw StorageError(path + " has format_version " + std::to_string(read_int_attribute(file, "format_version")) +
                           "; this tool writes " + std::to_string(format_version));
    if (has_attribute(file, "merged_shards"))
        throw StorageError(path + " is a merged view over shard files; resume the shards, then merge again");
    const std::string stored_hash = read_string_attribute(file, "spec_sha256");
    const std::string hash = spec_sha256(spec);
    if (stored_hash != hash)
        throw SpecMismatchError("cannot resume " + path + ": it was written by a different spec (" +
                           spec_mismatch_reason(file, spec) + "; stored sha256 " + stored_hash.substr(0, 12) +
                           ", this spec " + hash.substr(0, 12) + ")");
    for (const DatasetLayout& dataset : layout.datasets) {
        if (!link_exists(file, dataset.path()))
            throw StorageError("cannot resume " + path + ": it has no " + dataset.path() +
                               " (written by another version of the tool?)");
        Handle opened_dataset = open_dataset(file, dataset.path());
        if (dataset_dims(opened_dataset.get()) != dataset.shape)
            throw StorageError("cannot resume " + path + ": " + dataset.path() + " does not have this spec's shape");
    }
    return ShardRange{read_int_attribute(file, "shard_index"), read_int_attribute(file, "shard_count"),
                      read_int_attribute(file, "shard_begin"), read_int_attribute(file, "shard_end")};
}

// Opens a file that passed checked_resumable for writing, under its lock.
// SWMR writing from the first moment: a kill at any point of the resume
// leaves a file that SWMR readers, ResultReader and the next --resume open.
std::unique_ptr<ResultWriter::State> open_for_resume(const std::string& path, const SweepSpec& spec, const Grid& grid) {
    auto state = std::make_unique<ResultWriter::State>();
    state->path = path;
    state->spec = spec;
    state->layout = describe_layout(spec, grid);
    state->shard = checked_resumable(path, spec, state->layout);
    state->lock = FileLock::acquire(path);
    Handle clearing = status_clearing_access(path);
    const MetadataDeadline deadline("opening " + path + " for resuming");
    state->file = checked(H5Fopen(path.c_str(), H5F_ACC_RDWR | H5F_ACC_SWMR_WRITE, clearing.get()), H5Fclose,
                          "cannot open " + path + " for resuming");
    // A killed SWMR writer's superblock can record an end of allocation below
    // chunks it had already written and indexed: new allocations (or the
    // truncation at close) would then destroy finished trajectories. Before
    // anything is allocated, move it to the real end of file
    // (h5clear --increment=0).
    check(H5Fincrement_filesize(state->file.get(), 0), path + ": cannot move the end of allocation to the end of file");
    pause_for_tests("RESUME_OPEN");
    return state;
}

// Runs of one file may differ in backend or host; keep every one on record.
// Written last, once everything else about the resume succeeded.
void record_resume(const ResultWriter::State& state, const Provenance& provenance) {
    const hid_t file = state.file.get();
    std::string history = has_attribute(file, "resume_history") ? read_string_attribute(file, "resume_history") : "";
    history += std::string(history.empty() ? "" : "\n") + utc_timestamp() + " backend=" + provenance.backend +
               " device=" + provenance.device_name + " command=" + provenance.command_line;
    write_string_attribute(file, "resume_history", history);
}

Handle open_status(const ResultWriter::State& state, const Grid& grid) {
    Handle status = open_dataset(state.file.get(), "/results/status");
    if (dataset_dims(status.get()) != grid.shape())
        throw StorageError(state.path + ": /results/status does not have this spec's grid shape");
    return status;
}

std::int64_t finished_in(std::span<const std::int8_t> status) {
    return std::count_if(status.begin(), status.end(), [](std::int8_t s) { return s >= 0; });
}

// Ends the resume's opening window: the history is recorded and the file
// closed clean; from here on it is open only while a batch is written.
void finish_resume_open(ResultWriter::State& state, const Provenance& provenance) {
    record_resume(state, provenance);
    close_window(state);
}

} // namespace

ShardRange ResultWriter::check_resumable(const std::string& path, const SweepSpec& spec, const Grid& grid) {
    QuietErrors quiet;
    return checked_resumable(path, spec, describe_layout(spec, grid));
}

std::unique_ptr<ResultWriter> ResultWriter::resume(const std::string& path, const SweepSpec& spec, const Grid& grid,
                                                   const Provenance& provenance, std::vector<std::int8_t>& status_out) {
    QuietErrors quiet;
    std::unique_ptr<State> state = open_for_resume(path, spec, grid);
    {
        Handle status = open_status(*state, grid);
        status_out.assign(static_cast<std::size_t>(grid.size()), -1);
        check(H5Dread(status.get(), H5T_NATIVE_INT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, status_out.data()),
              path + ": cannot read /results/status");
        state->safe_trajectories = finished_in(std::span<const std::int8_t>(status_out).subspan(
            static_cast<std::size_t>(state->shard.begin), static_cast<std::size_t>(state->shard.end - state->shard.begin)));
    }
    finish_resume_open(*state, provenance);
    return std::unique_ptr<ResultWriter>(new ResultWriter(std::move(state)));
}

std::unique_ptr<ResultWriter> ResultWriter::resume(const std::string& path, const SweepSpec& spec, const Grid& grid,
                                                   const Provenance& provenance, const StatusBlocks& status_blocks,
                                                   std::int64_t block_size) {
    if (block_size < 1) throw StorageError("resume: the status block size must be at least 1");
    QuietErrors quiet;
    std::unique_ptr<State> state = open_for_resume(path, spec, grid);
    {
        Handle status = open_status(*state, grid);
        std::vector<std::int8_t> block;
        for (std::int64_t first = state->shard.begin; first < state->shard.end; first += block_size) {
            const std::int64_t count = std::min(block_size, state->shard.end - first);
            Handle file_space = checked(H5Dget_space(status.get()), H5Sclose, path + ": cannot get a dataspace");
            check(H5Sselect_none(file_space.get()), "cannot reset a selection");
            // A union of boxes is read in increasing flat order (flat_boxes.hpp).
            for (const GridBox& box : flat_range_boxes(grid.shape(), first, first + count)) {
                const std::vector<hsize_t> start = to_hsize(box.start), extent = to_hsize(box.count);
                check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_OR, start.data(), nullptr, extent.data(),
                                          nullptr),
                      path + ": cannot select in /results/status");
            }
            const auto length = static_cast<hsize_t>(count);
            Handle memory_space = checked(H5Screate_simple(1, &length, nullptr), H5Sclose, "cannot make a dataspace");
            block.resize(static_cast<std::size_t>(count));
            check(H5Dread(status.get(), H5T_NATIVE_INT8, memory_space.get(), file_space.get(), H5P_DEFAULT,
                          block.data()),
                  path + ": cannot read /results/status");
            state->safe_trajectories += finished_in(block);
            status_blocks(first, block);
        }
    }
    finish_resume_open(*state, provenance);
    return std::unique_ptr<ResultWriter>(new ResultWriter(std::move(state)));
}

void ResultWriter::close() {
    if (!state_ || state_->closed) return;
    stop_flusher(*state_);
    const std::lock_guard lock(state_->mutex);
    QuietErrors quiet;
    state_->closed = true;
    std::exception_ptr error = std::exchange(state_->flush_error, nullptr);
    if (!error && !state_->failed) {
        try {
            flush_seed_data(*state_);
            store_pending(*state_); // whatever coalescing still holds
        } catch (...) {
            error = std::current_exception();
        }
    }
    state_->datasets.clear();
    const bool closed_cleanly = !state_->file || state_->file.reset(); // H5Fclose flushes and clears the flags
    state_->lock.release();
    if (error) std::rethrow_exception(error);
    if (!closed_cleanly) fail(state_->path + ": closing the file failed");
}

const std::string& ResultWriter::path() const { return state_->path; }
ShardRange ResultWriter::shard() const { return state_->shard; }
const std::vector<std::int64_t>& ResultWriter::record_steps() const { return state_->layout.steps; }

} // namespace collapse::storage
