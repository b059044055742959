#include "hostile_input.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

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

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <mutex>
#include <thread>

namespace collapse::storage::detail {
namespace {

// What RemoveOnFatalExit names, in fixed storage: the signal handler may
// not allocate or take locks.
constexpr int fatal_exit_slots = 8;
constexpr std::size_t fatal_exit_path_capacity = 4096;
char fatal_exit_paths[fatal_exit_slots][fatal_exit_path_capacity];
std::atomic<bool> fatal_exit_slot_used[fatal_exit_slots];

// Async-signal-safe: called from the crash handler and the watchdog.
void remove_fatal_exit_paths() {
    for (int slot = 0; slot < fatal_exit_slots; ++slot)
        if (fatal_exit_slot_used[slot].load()) ::unlink(fatal_exit_paths[slot]);
}

[[noreturn]] void exit_for_damage(const char* message, std::size_t length) {
    [[maybe_unused]] const ssize_t written = ::write(2, message, length);
    remove_fatal_exit_paths();
    ::_exit(1);
}

// The crash guard is per thread: only a fault on the thread inside HDF5's
// read of the damaged file is the file's fault.
thread_local int armed_reads_on_this_thread = 0;
thread_local char crash_message[1024];
thread_local std::size_t crash_message_length = 0;

constexpr int crash_signals[] = {SIGSEGV, SIGBUS, SIGFPE};
struct sigaction previous_crash_actions[std::size(crash_signals)];

extern "C" void on_crash_signal(int signal, siginfo_t* info, void*) {
    if (armed_reads_on_this_thread > 0) exit_for_damage(crash_message, crash_message_length);
    // Not ours: put back the handler that was there and let the fault happen
    // again under it (a fault re-executes; a sent signal is sent again).
    for (std::size_t i = 0; i < std::size(crash_signals); ++i)
        if (crash_signals[i] == signal) ::sigaction(signal, &previous_crash_actions[i], nullptr);
    if (info == nullptr || info->si_code <= 0) ::raise(signal);
}

void install_crash_guard() {
    static std::once_flag installed;
    std::call_once(installed, [] {
        struct sigaction action{};
        action.sa_sigaction = on_crash_signal;
        action.sa_flags = SA_SIGINFO;
        sigemptyset(&action.sa_mask);
        for (std::size_t i = 0; i < std::size(crash_signals); ++i)
            ::sigaction(crash_signals[i], &action, &previous_crash_actions[i]);
    });
}

void arm_crash_guard(const std::string& what) {
    install_crash_guard();
    if (armed_reads_on_this_thread++ > 0) return; // the outermost read names the damage
    const std::string message = "error: " + what +
                                " crashed inside HDF5: the file is damaged in a way HDF5 does not check "
                                "(docs/format.md, \"Hostile files\")\n";
    crash_message_length = std::min(message.size(), sizeof crash_message);
    std::memcpy(crash_message, message.data(), crash_message_length);
}

void disarm_crash_guard() { --armed_reads_on_this_thread; }

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
                exit_for_damage(message.data(), message.size());
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

UntrustedRead::UntrustedRead(const std::string& what) { arm_crash_guard(what); }
UntrustedRead::~UntrustedRead() { disarm_crash_guard(); }

MetadataDeadline::MetadataDeadline(const std::string& what) : UntrustedRead(what) { Watchdog::instance().arm(what); }
MetadataDeadline::~MetadataDeadline() { Watchdog::instance().disarm(); }

RemoveOnFatalExit::RemoveOnFatalExit(const std::string& path) : slot_(-1) {
    if (path.size() >= fatal_exit_path_capacity) return; // such a path is left behind, as before
    static std::mutex slots;
    const std::lock_guard lock(slots);
    for (int slot = 0; slot < fatal_exit_slots; ++slot)
        if (!fatal_exit_slot_used[slot].load()) {
            std::memcpy(fatal_exit_paths[slot], path.c_str(), path.size() + 1);
            fatal_exit_slot_used[slot].store(true);
            slot_ = slot;
            return;
        }
}

RemoveOnFatalExit::~RemoveOnFatalExit() {
    if (slot_ >= 0) fatal_exit_slot_used[slot_].store(false);
}

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

namespace {

std::vector<std::string> dataset_names(hid_t file, const std::string& path) {
    std::vector<std::string> names;
    const auto visit = [](hid_t, const char* name, const H5O_info_t* info, void* data) -> herr_t {
        if (info->type == H5O_TYPE_DATASET) static_cast<std::vector<std::string>*>(data)->emplace_back(name);
        return 0;
    };
    if (H5Ovisit2(file, H5_INDEX_NAME, H5_ITER_NATIVE, visit, &names, H5O_INFO_BASIC) < 0)
        fail(path + " is damaged: its metadata does not read back");
    return names;
}

// Walks the chunk index (fixed or extensible array, B-tree) of one chunked
// dataset: H5Dget_num_chunks iterates over every entry, so every index block
// is loaded once and its checksum checked. The chunks' data are not read.
void verify_chunk_index(hid_t file, const std::string& name, const std::string& path) {
    const std::string what = path + ": /" + name;
    const Handle dataset = checked(H5Dopen2(file, name.c_str(), H5P_DEFAULT), H5Dclose,
                                   path + " is damaged: dataset /" + name + " does not open");
    const Handle creation = checked(H5Dget_create_plist(dataset.get()), H5Pclose, "cannot read the layout of " + what);
    if (H5Pget_layout(creation.get()) != H5D_CHUNKED) return;
    const Handle space = checked(H5Dget_space(dataset.get()), H5Sclose, "cannot read the shape of " + what);
    hsize_t chunks = 0;
    if (H5Dget_num_chunks(dataset.get(), space.get(), &chunks) < 0)
        fail(path + " is damaged: the chunk index of /" + name + " does not read back");
}

} // namespace

void verify_object_headers(const std::string& path) {
    Handle opened;
    try {
        std::vector<std::string> datasets;
        {
            const MetadataDeadline deadline("checking the metadata of " + path);
            const Handle access = bounded_read_access();
            hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, access.get());
            if (file < 0) {
                const std::string plain_error = take_error_stack();
                if (!open_refused_for_writer(plain_error))
                    throw StorageError("cannot open " + path + " (" + plain_error + ")");
                file = H5Fopen(path.c_str(), H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, access.get());
                if (file < 0) fail("cannot open " + path);
            }
            opened = Handle(file, H5Fclose);
            datasets = dataset_names(file, path);
        }
        // One deadline per dataset: a large grid's indices together may take
        // a while to read, one of them never should.
        for (const std::string& name : datasets) {
            const MetadataDeadline deadline("checking the chunk index of /" + name + " in " + path);
            verify_chunk_index(opened.get(), name, path);
        }
    } catch (...) {
        const MetadataDeadline deadline("closing " + path);
        opened.reset();
        throw;
    }
    const MetadataDeadline deadline("closing " + path);
    if (!opened.reset()) fail(path + ": closing it after the check failed");
}

} // namespace collapse::storage::detail
