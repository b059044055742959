#include "file_lock.hpp"

#include <fcntl.h>
#include <stdio.h> // renameat2
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>
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
        // against a concurrent writer, but nothing else breaks. The
        // descriptor stays open so names_locked_file still works.
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

bool FileLock::names_locked_file(const std::string& path) const {
    if (descriptor_ < 0) return true; // nothing to compare with
    struct stat locked {}, named {};
    if (::fstat(descriptor_, &locked) != 0 || ::stat(path.c_str(), &named) != 0) return false;
    return locked.st_dev == named.st_dev && locked.st_ino == named.st_ino;
}

bool is_being_written(const std::string& path) {
    const int descriptor = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (descriptor < 0) return false;
    struct flock region {};
    region.l_type = F_WRLCK;
    region.l_whence = SEEK_SET;
    region.l_start = static_cast<off_t>(1) << 62;
    region.l_len = 1;
    const bool locked = ::fcntl(descriptor, F_OFD_GETLK, &region) == 0 && region.l_type != F_UNLCK;
    ::close(descriptor);
    return locked;
}

void pause_for_tests(const char* point) {
    const char* seconds = std::getenv((std::string("COLLAPSE_TEST_PAUSE_") + point).c_str());
    if (seconds != nullptr) std::this_thread::sleep_for(std::chrono::duration<double>(std::atof(seconds)));
}

void publish_file(const std::string& temporary, const std::string& path, bool overwrite) {
    pause_for_tests("BEFORE_PUBLISH");
    for (int attempt = 0; attempt < 100; ++attempt) {
        if (::renameat2(AT_FDCWD, temporary.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) == 0) return;
        int error = errno;
        if (error == EEXIST && !overwrite)
            throw StorageError(path + " already exists; use --overwrite to replace it or --resume");
        if (error == EEXIST) {
            FileLock target;
            try {
                target = FileLock::acquire(path); // refuses a file a live writer owns
            } catch (const StorageError&) {
                if (::access(path.c_str(), F_OK) != 0) continue; // removed since: try the plain rename again
                throw;
            }
            // Every publisher locks an existing target before replacing it,
            // so nobody else can replace it while we hold its lock.
            if (!target.names_locked_file(path)) continue;
            if (std::rename(temporary.c_str(), path.c_str()) == 0) return;
            error = errno;
        }
        if (error == EINVAL || error == ENOSYS) { // no RENAME_NOREPLACE on this filesystem
            if (!overwrite && ::access(path.c_str(), F_OK) == 0)
                throw StorageError(path + " already exists; use --overwrite to replace it or --resume");
            if (overwrite && ::access(path.c_str(), F_OK) == 0) {
                const FileLock target = FileLock::acquire(path);
                if (std::rename(temporary.c_str(), path.c_str()) == 0) return;
            } else if (::link(temporary.c_str(), path.c_str()) == 0) {
                ::unlink(temporary.c_str());
                return;
            }
            error = errno;
        }
        throw StorageError("cannot create " + path + ": " + std::strerror(error));
    }
    throw StorageError("cannot create " + path + ": it keeps being replaced by other processes");
}

} // namespace collapse::storage::detail
