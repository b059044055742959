// Reading a sweep file with bounded work: `validate /dev/zero` once read 2 GB
// before failing, and a FIFO would block forever. Only regular files up to
// max_spec_file_bytes are read.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "collapse/sweep/spec_parser.hpp"

namespace collapse {
namespace {

std::string file_kind(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file";
}

struct Descriptor {
    int fd;
    ~Descriptor() {
        if (fd >= 0) ::close(fd);
    }
};

} // namespace

std::string read_spec_file(const std::string& path) {
    const auto refuse = [&](const std::string& reason) {
        return SpecError("cannot read sweep file '" + path + "': " + reason);
    };
    // O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
    const Descriptor file{::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC)};
    if (file.fd < 0) throw refuse(std::strerror(errno));
    struct stat status{};
    if (::fstat(file.fd, &status) != 0) throw refuse(std::strerror(errno));
    if (!S_ISREG(status.st_mode)) throw refuse(file_kind(status.st_mode) + ", not a sweep file");
    const auto too_large = [&](std::int64_t size) {
        return refuse("larger than " + std::to_string(max_spec_file_bytes >> 20) + " MiB (" + std::to_string(size) +
                      " bytes); a sweep file is a short TOML text");
    };
    if (status.st_size > max_spec_file_bytes) throw too_large(status.st_size);
    // The size may change while we read (a file still being written): read
    // at most one byte past the bound, so growth is caught without reading it all.
    std::string text;
    char buffer[1 << 16];
    for (;;) {
        const ssize_t got = ::read(file.fd, buffer, sizeof buffer);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) throw refuse(std::strerror(errno));
        if (got == 0) break;
        text.append(buffer, static_cast<std::size_t>(got));
        if (static_cast<std::int64_t>(text.size()) > max_spec_file_bytes)
            throw too_large(static_cast<std::int64_t>(text.size()));
    }
    return text;
}

} // namespace collapse
