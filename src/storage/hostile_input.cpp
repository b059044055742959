#include "hostile_input.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "collapse/storage/error.hpp"

namespace collapse::storage::detail {

void bound_metadata_retries(hid_t access) {
    check(H5Pset_metadata_read_attempts(access, metadata_read_attempts), "cannot bound metadata read attempts");
}

Handle bounded_read_access() {
    Handle access = checked(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, "cannot make a file access list");
    bound_metadata_retries(access.get());
    return access;
}

void check_hdf5_file(const std::string& path) {
    const auto refuse = [&](const std::string& reason) { return StorageError("cannot open " + path + ": " + reason); };
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) throw refuse(std::strerror(errno));
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat status{};
    if (::fstat(fd, &status) != 0) throw refuse(std::strerror(errno));
    if (S_ISDIR(status.st_mode)) throw refuse("it is a directory, not an HDF5 file");
    if (!S_ISREG(status.st_mode)) throw refuse("it is not a regular file (a FIFO, device or socket)");
    if (status.st_size == 0) throw refuse("the file is empty (0 bytes), not an HDF5 file");
    // HDF5 looks for its signature at 0 and at every power of two from 512 on.
    static constexpr std::array<unsigned char, 8> signature{0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    for (off_t offset = 0; offset + 8 <= status.st_size; offset = offset == 0 ? 512 : offset * 2) {
        std::array<unsigned char, 8> bytes{};
        if (::pread(fd, bytes.data(), bytes.size(), offset) != static_cast<ssize_t>(bytes.size()))
            throw refuse(std::string("read failed: ") + std::strerror(errno));
        if (bytes == signature) return;
    }
    throw refuse("not an HDF5 file (no HDF5 signature; " + std::to_string(status.st_size) + " bytes)" +
                 (status.st_size < 48 ? ", shorter than an HDF5 superblock: truncated?" : ""));
}

bool open_refused_for_writer(const std::string& error_stack) {
    return error_stack.find("already open for") != std::string::npos;
}

} // namespace collapse::storage::detail
