// Test doubles for the scheduler tests: a backend that runs nothing and
// marks each trajectory with a fixed status (and spec_builder's tiny_spec).
#pragma once

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "collapse/backend/backend.hpp"
#include "collapse/backend/batch_assembly.hpp"
#include "spec_builder.hpp"

namespace collapse::testing {

class ScriptedBackend : public Backend {
public:
    explicit ScriptedBackend(TrajectoryStatus status, std::chrono::milliseconds delay = std::chrono::milliseconds(0))
        : status_(status), delay_(delay) {}
    std::string name() const override { return "scripted"; }
    std::string device_name() const override { return "none"; }
    std::int64_t default_batch_size(const SweepSpec&) const override { return 3; }
    void run_batch(const SweepSpec& spec, const Grid&, std::span<const std::int64_t> flat, BatchOutput& out) override {
        // A delay lets every backend of a parallel run get work.
        if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
        if (fail) throw std::runtime_error("device lost");
        prepare_batch_output(spec, flat, out); // sized like a real batch, which the scheduler's analysis checks
        for (auto& summary : out.summary) summary.status = status_;
        ++batches;
    }
    std::atomic<int> batches{0};
    bool fail = false;

private:
    TrajectoryStatus status_;
    std::chrono::milliseconds delay_;
};

} // namespace collapse::testing
