// An advisory lock a writer holds on its output file for its whole life.
//
// HDF5's own protection against two writers is the superblock status flag,
// but --resume must clear that flag on files left by a killed writer, and
// clearing it would equally succeed on a file whose writer is alive (HDF5
// drops its own file lock once SWMR writing starts). An open-file-description
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

private:
    int descriptor_ = -1;
};

} // namespace collapse::storage::detail
