// Writes a sweep's HDF5 output file (SPEC §6) batch by batch, crash-consistently.
//
// The file is created complete (every group, dataset, dimension scale and
// attribute) under a temporary name, closed and only then renamed to its
// final path, so OUT.h5 never names a half-built file. The file is open for
// writing only while a batch is written (a "write window": open for SWMR
// writing, write, flush, close), so between batches it is closed and clean
// and every HDF5 reader opens it. Each batch writes its data, flushes, and
// only then writes /results/status: status >= 0 on disk implies the
// trajectory's data are on disk. A writer killed inside a window leaves a
// file that ResultReader, `--resume` and h5py (with swmr=True) open; see
// docs/format.md.
//
// Like the HDF5 library under it, a writer is not thread-safe: one thread at
// a time may call it (any thread, not necessarily the creating one). With
// coalesce_writes a thread of its own also writes, serialised with the caller.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "collapse/config.hpp"
#include "collapse/results.hpp"
#include "collapse/sweep/grid.hpp"

namespace collapse::storage {

// Where a file came from; tool version and git sha come from version.hpp and
// the creation time is stamped by the writer.
struct Provenance {
    std::string command_line;
    std::string backend;
    std::string device_name;
};

// The part of the grid one file owns: flat indices [begin, end). end = -1
// means the whole grid. Shard files still hold full-grid-shape datasets; the
// entries outside the range stay status -1.
struct ShardRange {
    std::int64_t index = 0;
    std::int64_t count = 1;
    std::int64_t begin = 0;
    std::int64_t end = -1;
};

// For the command-line process, before any other HDF5 call: HDF5 must not
// run its own clean-up at exit. That clean-up flushes files still open, and
// after a failed write (disk full) it writes more and has crashed; every
// file the tool opens is closed explicitly before it exits.
void skip_hdf5_cleanup_at_exit();

class ResultWriter {
public:
    // The per-seed arrays of one seed (output.save_initial).
    using SeedSource = std::function<SeedData(std::int64_t seed_index)>;

    // Creates `path`. Throws StorageError if it exists and !overwrite, or if
    // another process is writing it. With `seeds` (and output.save_initial)
    // every seed's /initial and /graph arrays are written before the file is
    // renamed into place, so they never need a write window of their own.
    static std::unique_ptr<ResultWriter> create(const std::string& path, const SweepSpec& spec, const Grid& grid,
                                                const Provenance& provenance, ShardRange shard, bool overwrite,
                                                const SeedSource& seeds = {});

    // Re-opens `path` for --resume, also when its writer was killed. Throws
    // StorageError if the stored spec (text + overrides) differs from `spec`,
    // or if another process is writing it. Fills `status_out` with every
    // trajectory's status in flat order (the whole grid: trajectories outside
    // shard() are -1 too and are not this file's to run).
    static std::unique_ptr<ResultWriter> resume(const std::string& path, const SweepSpec& spec, const Grid& grid,
                                                const Provenance& provenance, std::vector<std::int8_t>& status_out);

    // Every check resume makes, without writing anything: the file exists, is
    // a collapse-sweep file of this format version, not merged, written by
    // this spec (text + overrides), with this spec's datasets and shapes.
    // Returns the range the file owns. Throws StorageError.
    static ShardRange check_resumable(const std::string& path, const SweepSpec& spec, const Grid& grid);

    // Called with consecutive blocks of statuses: `first` is the flat index
    // of block[0]; blocks come in increasing order, without gaps.
    using StatusBlocks = std::function<void(std::int64_t first, std::span<const std::int8_t> block)>;
    // As above, but reads only this file's shard() of /results/status, in
    // blocks of at most `block_size`, so memory stays O(block), not O(grid).
    static std::unique_ptr<ResultWriter> resume(const std::string& path, const SweepSpec& spec, const Grid& grid,
                                                const Provenance& provenance, const StatusBlocks& status_blocks,
                                                std::int64_t block_size = std::int64_t{1} << 20);

    ~ResultWriter();
    ResultWriter(const ResultWriter&) = delete;
    ResultWriter& operator=(const ResultWriter&) = delete;

    // /initial per-seed arrays and /graph for one seed. Only valid with
    // output.save_initial; idempotent, so a resumed run may simply write every
    // seed again. Seeds are collected and written 16 at a time, after the
    // last seed, and before the next batch or close().
    void write_seed_data(const SeedData& seed);

    // One batch of finished trajectories (any order, any flat indices inside
    // shard(), no duplicates). Returns once everything, status last, is
    // flushed and the file closed again (unless coalesce_writes defers it).
    // Running out of space throws OutOfSpaceError (from the next call or
    // close() when it happened in a deferred window); after any failure the
    // writer refuses further writes.
    void write_batch(const BatchOutput& batch);

    // From now on, batches (and seeds) finished within `seconds` of the last
    // write window are staged and compressed at once but stored together in
    // the next window, which opens `seconds` after the last one closed (on a
    // thread of the writer's own, if no call comes first), or at close().
    // The file is then marked "open for writing" at most once per `seconds`,
    // whatever the batch size, and a kill loses at most `seconds` of finished
    // work besides the batch in flight (docs/format.md). 0 (the default):
    // every batch has its own window. While coalescing, the process must not
    // hold the file open itself (HDF5 refuses a window on a file the same
    // process has open for reading); other processes may.
    void coalesce_writes(double seconds);

    // Stores anything coalescing holds, flushes and closes; the file then
    // opens normally everywhere. Idempotent.
    void close();

    const std::string& path() const;
    ShardRange shard() const; // resolved: end is never -1
    const std::vector<std::int64_t>& record_steps() const;

    struct State;

private:
    explicit ResultWriter(std::unique_ptr<State> state);
    std::unique_ptr<State> state_;
};

} // namespace collapse::storage
