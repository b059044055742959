#include "collapse/storage/result_writer.hpp"

#include <stdio.h> // renameat2
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
// is compressed once per batch whatever the cache size; what the cache saves
// is re-reading the chunk a batch left partly written, which the next batch
// completes, and that is the last chunk written. A larger cache only keeps
// chunks that are never touched again: with 4 MiB per dataset it grew to
// ~100 MB over the first 5*10^5 trajectories (docs/performance.md, "Memory").
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
                                state.path + ": missing dataset " + dataset.path());
        if (dataset_dims(opened.get()) != dataset.shape)
            throw StorageError(state.path + ": " + dataset.path() + " does not have the shape this spec gives");
        state.datasets.emplace(dataset.path(), std::move(opened));
    }
}

void flush(const ResultWriter::State& state) {
    check(H5Fflush(state.file.get(), H5F_SCOPE_GLOBAL), state.path + ": flush failed");
}

void start_swmr(ResultWriter::State& state) {
    check(H5Fstart_swmr_write(state.file.get()), state.path + ": cannot start SWMR writing");
    open_datasets(state);
}

ShardRange resolved(ShardRange shard, std::int64_t grid_size) {
    if (shard.end < 0) shard.end = grid_size;
    if (shard.begin < 0 || shard.begin > shard.end || shard.end > grid_size)
        throw StorageError("shard range [" + std::to_string(shard.begin) + ", " + std::to_string(shard.end) +
                           ") is outside the grid of " + std::to_string(grid_size) + " trajectories");
    return shard;
}

// Moves the finished temporary file to its name; without `overwrite` the
// rename itself refuses an existing target, so a racing run cannot be clobbered.
void publish(const std::string& temporary, const std::string& path, bool overwrite) {
    const int moved = overwrite ? std::rename(temporary.c_str(), path.c_str())
                                : ::renameat2(AT_FDCWD, temporary.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE);
    if (moved != 0) {
        const int error = errno;
        if (error == EEXIST) throw StorageError(path + " already exists; use --overwrite to replace it or --resume");
        throw StorageError("cannot create " + path + ": " + std::strerror(error));
    }
}

} // namespace

ResultWriter::ResultWriter(std::unique_ptr<State> state) : state_(std::move(state)) {}

ResultWriter::~ResultWriter() {
    try {
        close();
    } catch (...) {
        // A destructor must not throw; callers who care call close().
    }
}

std::unique_ptr<ResultWriter> ResultWriter::create(const std::string& path, const SweepSpec& spec, const Grid& grid,
                                                   const Provenance& provenance, ShardRange shard, bool overwrite) {
    QuietErrors quiet;
    auto state = std::make_unique<State>();
    state->path = path;
    state->spec = spec;
    state->layout = describe_layout(spec, grid);
    state->shard = resolved(shard, grid.size());
    if (std::filesystem::exists(path)) {
        if (!overwrite) throw StorageError(path + " already exists; use --overwrite to replace it or --resume");
        FileLock::acquire(path); // refuses a file a live writer still owns
    }

    // Built under a temporary name and renamed once complete: a kill during
    // creation never leaves a half-built file at `path`.
    const std::string temporary = path + ".creating-" + std::to_string(::getpid());
    std::filesystem::remove(temporary);
    try {
        Handle access = latest_format_access();
        state->file = checked(H5Fcreate(temporary.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, access.get()), H5Fclose,
                              "cannot create " + path + " (as " + temporary + ")");
        state->lock = FileLock::acquire(temporary); // the lock follows the inode through the rename
        build_file_structure(state->file.get(), spec, state->layout, provenance, state->shard);
        flush(*state);
        check(H5Fstart_swmr_write(state->file.get()), path + ": cannot start SWMR writing");
        publish(temporary, path, overwrite);
    } catch (...) {
        state->file.reset();
        std::filesystem::remove(temporary);
        throw;
    }
    open_datasets(*state);
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
    Handle access = latest_format_access();
    const char* property = "clear_status_flags";
    if (H5Pexist(access.get(), property) <= 0)
        throw StorageError(path + " was left open by a killed writer and this HDF5 cannot clear that; "
                                  "run h5clear -s --increment=0 on it");
    std::size_t size = 0;
    check(H5Pget_size(access.get(), property, &size), "cannot query " + std::string(property));
    std::vector<unsigned char> value(size, 0);
    value[0] = 1; // hbool_t true, whatever its width on this build (little-endian)
    check(H5Pset(access.get(), property, value.data()), "cannot set " + std::string(property));
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

} // namespace

namespace {

// Everything resume does before reading the statuses: open (clearing a
// killed writer's flags), check the spec, record the run in resume_history.
std::unique_ptr<ResultWriter::State> open_for_resume(const std::string& path, const SweepSpec& spec, const Grid& grid,
                                                     const Provenance& provenance) {
    if (!std::filesystem::exists(path)) throw StorageError("cannot resume " + path + ": no such file");
    check_hdf5_file(path); // before the lock and HDF5 touch it: nothing is written into a file that is not ours
    auto state = std::make_unique<ResultWriter::State>();
    state->path = path;
    state->spec = spec;
    state->layout = describe_layout(spec, grid);
    state->lock = FileLock::acquire(path);

    verify_object_headers(path);
    Handle access = latest_format_access();
    const MetadataDeadline deadline("opening " + path + " for resuming");
    hid_t opened = H5Fopen(path.c_str(), H5F_ACC_RDWR, access.get());
    if (opened < 0) {
        const std::string first_error = take_error_stack();
        Handle clearing = status_clearing_access(path);
        opened = H5Fopen(path.c_str(), H5F_ACC_RDWR, clearing.get());
        if (opened < 0) fail("cannot open " + path + " for resuming (first attempt: " + first_error + ")");
    }
    state->file = Handle(opened, H5Fclose);
    const hid_t file = state->file.get();
    // A killed SWMR writer's superblock can record an end of allocation below
    // chunks it had already written and indexed: new allocations (or the
    // truncation at close) would then destroy finished trajectories. Before
    // anything is allocated, move it to the real end of file
    // (h5clear --increment=0).
    check(H5Fincrement_filesize(file, 0), path + ": cannot move the end of allocation to the end of file");
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
        throw StorageError("cannot resume " + path + ": it was written by a different spec (" +
                           spec_mismatch_reason(file, spec) + "; stored sha256 " + stored_hash.substr(0, 12) +
                           ", this spec " + hash.substr(0, 12) + ")");
    state->shard = ShardRange{read_int_attribute(file, "shard_index"), read_int_attribute(file, "shard_count"),
                              read_int_attribute(file, "shard_begin"), read_int_attribute(file, "shard_end")};

    // Runs of one file may differ in backend or host; keep every one on record.
    std::string history = has_attribute(file, "resume_history") ? read_string_attribute(file, "resume_history") : "";
    history += std::string(history.empty() ? "" : "\n") + utc_timestamp() + " backend=" + provenance.backend +
               " device=" + provenance.device_name + " command=" + provenance.command_line;
    write_string_attribute(file, "resume_history", history);

    return state;
}

Handle open_status(const ResultWriter::State& state, const Grid& grid) {
    Handle status = open_dataset(state.file.get(), "/results/status");
    if (dataset_dims(status.get()) != grid.shape())
        throw StorageError(state.path + ": /results/status does not have this spec's grid shape");
    return status;
}

} // namespace

std::unique_ptr<ResultWriter> ResultWriter::resume(const std::string& path, const SweepSpec& spec, const Grid& grid,
                                                   const Provenance& provenance, std::vector<std::int8_t>& status_out) {
    QuietErrors quiet;
    std::unique_ptr<State> state = open_for_resume(path, spec, grid, provenance);
    {
        Handle status = open_status(*state, grid);
        status_out.assign(static_cast<std::size_t>(grid.size()), -1);
        check(H5Dread(status.get(), H5T_NATIVE_INT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, status_out.data()),
              path + ": cannot read /results/status");
    }
    flush(*state);
    start_swmr(*state);
    return std::unique_ptr<ResultWriter>(new ResultWriter(std::move(state)));
}

std::unique_ptr<ResultWriter> ResultWriter::resume(const std::string& path, const SweepSpec& spec, const Grid& grid,
                                                   const Provenance& provenance, const StatusBlocks& status_blocks,
                                                   std::int64_t block_size) {
    if (block_size < 1) throw StorageError("resume: the status block size must be at least 1");
    QuietErrors quiet;
    std::unique_ptr<State> state = open_for_resume(path, spec, grid, provenance);
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
            status_blocks(first, block);
        }
    }
    flush(*state);
    start_swmr(*state);
    return std::unique_ptr<ResultWriter>(new ResultWriter(std::move(state)));
}

void ResultWriter::close() {
    if (!state_ || state_->closed) return;
    QuietErrors quiet;
    state_->closed = true;
    state_->datasets.clear();
    const bool closed_cleanly = state_->file.reset(); // H5Fclose flushes and clears the superblock flags
    state_->lock.release();
    if (!closed_cleanly) fail(state_->path + ": closing the file failed");
}

const std::string& ResultWriter::path() const { return state_->path; }
ShardRange ResultWriter::shard() const { return state_->shard; }
const std::vector<std::int64_t>& ResultWriter::record_steps() const { return state_->layout.steps; }

} // namespace collapse::storage
