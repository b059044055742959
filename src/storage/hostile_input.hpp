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

namespace collapse::storage::detail {

// HDF5 trusts sizes and pointers it reads from unchecksummed structures: a
// flipped bit in a global heap collection's object size makes H5HG_read copy
// from outside the heap (a SIGSEGV in H5DSget_num_scales, seen in CI). While
// an UntrustedRead is armed on a thread, a SIGSEGV, SIGBUS or SIGFPE on that
// thread is taken as the file's damage, not a bug of ours: the process prints
// `error: <what> crashed inside HDF5: the file is damaged ...`, removes what
// RemoveOnFatalExit names and exits 1. A fault anywhere else goes to the
// handler that was there before (the default, or a sanitizer's). Alone, it
// guards reads that may take long: a dataset, merge's walk over a shard.
class UntrustedRead {
public:
    explicit UntrustedRead(const std::string& what);
    ~UntrustedRead();
    UntrustedRead(const UntrustedRead&) = delete;
    UntrustedRead& operator=(const UntrustedRead&) = delete;
};

// Some damage HDF5 does not detect makes it loop: a global heap collection
// with a zeroed object size, in any mode. HDF5 cannot be interrupted, so a
// read of metadata (opening a file, reading an attribute) runs under a
// deadline as well as the crash guard: past it the process says which read
// hung and that the file is damaged, and exits 1.
// COLLAPSE_HDF5_METADATA_TIMEOUT (seconds, default 10) sets it, for file
// systems slow enough to need more.
class MetadataDeadline : public UntrustedRead {
public:
    explicit MetadataDeadline(const std::string& what);
    ~MetadataDeadline();
};

// Names a file the process is building under a temporary name, so that the
// watchdog's or the crash guard's exit removes it instead of leaving it
// behind (a merge's OUT.h5.merging-PID). At most 8 at a time.
class RemoveOnFatalExit {
public:
    explicit RemoveOnFatalExit(const std::string& path);
    ~RemoveOnFatalExit();
    RemoveOnFatalExit(const RemoveOnFatalExit&) = delete;
    RemoveOnFatalExit& operator=(const RemoveOnFatalExit&) = delete;

private:
    int slot_;
};

// The file an HDF5 object belongs to, for messages ("" when unknown).
std::string file_name_of(hid_t object);

} // namespace collapse::storage::detail

namespace collapse::storage::detail {

// Opens `path` read-only (SWMR reading if a writer's flag is set, with the
// retries bounded) and reads every object header and link, so that a bad
// checksum fails here, fast and without writing anything, before --resume
// opens the file for writing: there, after H5Fstart_swmr_write, every
// metadata read is retried (on damage: minutes), and a failed open leaves a
// library that cannot close the file.
void verify_object_headers(const std::string& path);

} // namespace collapse::storage::detail
