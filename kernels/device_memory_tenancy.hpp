// At most one of the backend's device-memory users holds memory at a time.
// The kernels' pools (DeviceBatchRunner) and the lockstep path's pools
// (LockstepRunner) are grow-only and each sized for batches of up to half
// the free device memory (default_batch_size); a sweep whose batches go to
// both paths would otherwise keep both sets, up to the whole card. Plain C++,
// so tests check it with host-side stand-ins.
#pragma once

#include <functional>

namespace collapse::cuda {

class DeviceMemoryTenancy {
public:
    // Makes `tenant` the holder: the previous holder, if another, frees its
    // device memory (release_device_memory()) first. Returns `tenant`.
    template <class Tenant>
    Tenant& hand_to(Tenant& tenant) {
        if (holder_ != static_cast<const void*>(&tenant)) {
            if (release_holder_) release_holder_();
            holder_ = &tenant;
            release_holder_ = [&tenant] { tenant.release_device_memory(); };
        }
        return tenant;
    }

    const void* holder() const { return holder_; }

private:
    const void* holder_ = nullptr;
    std::function<void()> release_holder_;
};

} // namespace collapse::cuda
