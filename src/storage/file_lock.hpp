// An advisory lock a writer holds on its output file for its whole life, and
// the one way every command puts a finished file in place under its name.
//
// HDF5's own protection against two writers is the superblock status flag,
// but --resume must clear that flag on files left by a killed writer, and
// clearing it would equally succeed on a file whose writer is alive (HDF5
// drops its own file lock once SWMR writing starts, and our writer turns
// HDF5's locking off so readers never block it). An open-file-description
// lock dies with the process, so it tells the two cases apart.
#pragma once

#include <string>

namespace collapse::storage::detail {

class FileLock {
public:
    FileLock() = default;
    // Throws StorageError if another process holds the lock on `path`.
    static FileLock acquire(const std::string& path);
    FileLock(FileLock&& other) noexcept;
    FileLock& operator=(FileLock&& other) noexcept;
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;
    ~FileLock();
    void release();
    // Whether `path` still names the file this lock was taken on (false once
    // it was moved, removed or replaced).
    bool names_locked_file(const std::string& path) const;

private:
    int descriptor_ = -1;
};

// Whether a live process holds the writer lock on `path` (without taking it,
// and without needing write permission).
bool is_being_written(const std::string& path);

// Renames the complete file `temporary` (whose lock the caller holds) to
// `path`. Without `overwrite` the rename refuses an existing `path`. With it,
// an existing `path` is locked first and stays locked across the rename, so
// a file a live writer owns is never replaced, and a file another command
// published since the caller's own checks is seen here (the check and the
// rename are not separated by an unlocked gap). Throws StorageError.
void publish_file(const std::string& temporary, const std::string& path, bool overwrite);

// Test-only fault injection (docs/cli.md, "Test hooks"): when the variable
// COLLAPSE_TEST_PAUSE_<point> is set, sleeps that many seconds, so a test can
// deliver a signal or start a racing command at that exact point.
void pause_for_tests(const char* point);

} // namespace collapse::storage::detail
