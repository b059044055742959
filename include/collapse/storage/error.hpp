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

} // namespace collapse::storage
