// The one exception type of the storage module: every HDF5 failure, layout
// mismatch or refused operation (clobber, wrong spec on resume, bad shard set)
// surfaces as a StorageError whose message names the file and the reason.
#pragma once

#include <stdexcept>
#include <string>

namespace collapse::storage {

struct StorageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// `--resume` with a spec (text or --set overrides) other than the file's: a
// spec problem, so the command line reports it as a usage error (exit 2).
struct SpecMismatchError : StorageError {
    using StorageError::StorageError;
};

// The disk (or quota, or the process's file-size limit) ran out while a
// writer wrote. The message says how many trajectories are safe in the file
// and that `--resume` continues it once there is room.
struct OutOfSpaceError : StorageError {
    using StorageError::StorageError;
};

} // namespace collapse::storage
