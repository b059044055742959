// Exceptions cannot leave an OpenMP region: one that does calls
// std::terminate (an abort, exit 134, for a std::bad_alloc in a worker).
// Every parallel loop catches into a FirstError and rethrows it after the
// region, so the caller reports it like any other error.
#pragma once

#include <exception>
#include <mutex>

namespace collapse {

class FirstError {
public:
    // Call from a catch block: keeps the first exception of any thread.
    void capture() noexcept {
        const std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
    }
    // Lets other threads skip the rest of their work once one has failed.
    bool failed() const noexcept {
        const std::lock_guard<std::mutex> lock(mutex_);
        return static_cast<bool>(error_);
    }
    // After the region, on the calling thread.
    void rethrow_if_any() const {
        if (error_) std::rethrow_exception(error_);
    }

private:
    mutable std::mutex mutex_;
    std::exception_ptr error_;
};

} // namespace collapse
