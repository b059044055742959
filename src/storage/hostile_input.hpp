// Opening files the tool did not necessarily write (docs/format.md, "Hostile
// files"): a truncated, corrupted or foreign file must fail within seconds,
// with a message, before HDF5 spends minutes on it.
#pragma once

#include <hdf5.h>

#include <string>

#include "hdf5_util.hpp"

namespace collapse::storage::detail {

// In SWMR mode HDF5 re-reads a metadata block whose checksum fails, sleeping
// 1 ns, 2 ns, 4 ns, ... between tries, 100 tries by default: on a corrupted
// file that is 2^100 ns. 24 tries bound it to ~17 ms per block and still
// outlast any torn read of a live writer's flush.
inline constexpr unsigned metadata_read_attempts = 24;

// Sets that bound on a file access property list.
void bound_metadata_retries(hid_t access);

// A file access property list for reading, with the bound.
Handle bounded_read_access();

// Refuses, with a StorageError naming `path`, anything HDF5 should not be
// handed: a missing file, a directory, FIFO or device, an empty file, or one
// without the HDF5 signature where HDF5 looks for it (byte 0, 512, 1024, ...).
void check_hdf5_file(const std::string& path);

// True when HDF5 refused an open only because the superblock says a writer
// has (or had, if it was killed) the file open: then SWMR reading is the way
// in, and any other failure is the file's own fault.
bool open_refused_for_writer(const std::string& error_stack);

} // namespace collapse::storage::detail
