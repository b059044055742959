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

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

namespace collapse::storage::detail {
namespace {

double metadata_timeout_seconds() {
    if (const char* text = std::getenv("COLLAPSE_HDF5_METADATA_TIMEOUT")) {
        char* end = nullptr;
        const double value = std::strtod(text, &end);
        if (end != text && *end == '\0' && value > 0 && value < 1e6) return value;
    }
    return 10.0;
}

// One thread watches every armed deadline; it is never joined (a hung HDF5
// call is exactly when it must act), hence the leaked singleton.
class Watchdog {
public:
    static Watchdog& instance() {
        static Watchdog* const watchdog = new Watchdog;
        return *watchdog;
    }

    void arm(const std::string& what) {
        const std::lock_guard lock(mutex_);
        if (!started_) {
            std::thread([this] { watch(); }).detach();
            started_ = true;
        }
        if (depth_++ == 0) {
            what_ = what;
            deadline_ = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(timeout_));
        }
        changed_.notify_all();
    }

    void disarm() {
        const std::lock_guard lock(mutex_);
        --depth_;
        changed_.notify_all();
    }

private:
    void watch() {
        std::unique_lock lock(mutex_);
        for (;;) {
            if (depth_ == 0) {
                changed_.wait(lock);
                continue;
            }
            const auto deadline = deadline_;
            changed_.wait_until(lock, deadline);
            if (depth_ > 0 && deadline_ == deadline && std::chrono::steady_clock::now() >= deadline) {
                char seconds[32];
                std::snprintf(seconds, sizeof seconds, "%g", timeout_);
                const std::string message =
                    "error: " + what_ + " did not finish within " + seconds +
                    " s: the file is damaged in a way HDF5 does not detect and loops on (docs/format.md, "
                    "\"Hostile files\"; COLLAPSE_HDF5_METADATA_TIMEOUT sets the limit)\n";
                [[maybe_unused]] const ssize_t written = ::write(2, message.data(), message.size());
                std::_Exit(1);
            }
        }
    }

    std::mutex mutex_;
    std::condition_variable changed_;
    bool started_ = false;
    int depth_ = 0;
    std::string what_;
    std::chrono::steady_clock::time_point deadline_;
    const double timeout_ = metadata_timeout_seconds();
};

} // namespace

MetadataDeadline::MetadataDeadline(const std::string& what) { Watchdog::instance().arm(what); }
MetadataDeadline::~MetadataDeadline() { Watchdog::instance().disarm(); }

std::string file_name_of(hid_t object) {
    const ssize_t length = H5Fget_name(object, nullptr, 0);
    if (length <= 0) return "";
    std::string name(static_cast<std::size_t>(length) + 1, '\0');
    H5Fget_name(object, name.data(), name.size());
    name.resize(static_cast<std::size_t>(length));
    return name;
}

} // namespace collapse::storage::detail

namespace collapse::storage::detail {

void verify_object_headers(const std::string& path) {
    const MetadataDeadline deadline("checking the metadata of " + path);
    const Handle access = bounded_read_access();
    hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, access.get());
    if (file < 0) {
        const std::string plain_error = take_error_stack();
        if (!open_refused_for_writer(plain_error)) throw StorageError("cannot open " + path + " (" + plain_error + ")");
        file = H5Fopen(path.c_str(), H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, access.get());
        if (file < 0) fail("cannot open " + path);
    }
    const Handle opened(file, H5Fclose);
    const auto visit = [](hid_t, const char*, const H5O_info_t*, void*) -> herr_t { return 0; };
    if (H5Ovisit2(file, H5_INDEX_NAME, H5_ITER_NATIVE, visit, nullptr, H5O_INFO_BASIC) < 0)
        fail(path + " is damaged: its metadata does not read back");
}

} // namespace collapse::storage::detail
