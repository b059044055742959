#include "file_lock.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "collapse/storage/error.hpp"

namespace collapse::storage::detail {

FileLock FileLock::acquire(const std::string& path) {
    FileLock lock;
    lock.descriptor_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (lock.descriptor_ < 0)
        throw StorageError("cannot open " + path + " to lock it: " + std::strerror(errno));
    // One byte far past any real file size: nobody else's whole-file or
    // data-range lock is affected, and it does not interact with HDF5's flock.
    struct flock region {};
    region.l_type = F_WRLCK;
    region.l_whence = SEEK_SET;
    region.l_start = static_cast<off_t>(1) << 62;
    region.l_len = 1;
    if (::fcntl(lock.descriptor_, F_OFD_SETLK, &region) != 0) {
        const int error = errno;
        if (error == EAGAIN || error == EACCES)
            throw StorageError(path + " is being written by another process");
        // Filesystems without OFD locks (some network mounts): no guard
        // against a concurrent writer, but nothing else breaks.
        lock.release();
    }
    return lock;
}

FileLock::FileLock(FileLock&& other) noexcept : descriptor_(std::exchange(other.descriptor_, -1)) {}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
    if (this != &other) {
        release();
        descriptor_ = std::exchange(other.descriptor_, -1);
    }
    return *this;
}

FileLock::~FileLock() { release(); }

void FileLock::release() {
    if (descriptor_ >= 0) ::close(descriptor_); // closing the description drops the lock
    descriptor_ = -1;
}

} // namespace collapse::storage::detail
