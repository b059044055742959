// What HDF5 does when the process exits.
#pragma once

namespace collapse::storage {

// Call first thing in main, before any HDF5 call. By default HDF5 closes
// every open identifier from an atexit handler; a file it failed to open or
// close cleanly (a damaged file, a full disk) stays open, and that handler
// then prints "infinite loop closing library" or crashes, after the tool has
// already reported the error. Every file the tool writes is closed (or,
// failing that, left crash-consistent) before exit, so nothing is lost.
void skip_hdf5_exit_handler();

} // namespace collapse::storage
