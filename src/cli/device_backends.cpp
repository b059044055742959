#include <sched.h>

#include <charconv>
#include <set>
#include <thread>

#include "run_modes.hpp"

namespace collapse::cli {
namespace {

std::vector<int> parse_devices(const std::string& text) {
    std::vector<int> devices;
    std::set<int> seen;
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t comma = std::min(text.find(',', start), text.size());
        const std::string_view item(text.data() + start, comma - start);
        int device = -1;
        const auto [end, error] = std::from_chars(item.data(), item.data() + item.size(), device);
        if (item.empty() || error != std::errc() || end != item.data() + item.size() || device < 0)
            throw UsageError("--devices '" + text + "': expected a comma-separated list of device numbers, e.g. 0,1");
        if (!seen.insert(device).second) throw UsageError("--devices '" + text + "': device " + std::to_string(device) +
                                                          " listed twice");
        devices.push_back(device);
        start = comma + 1;
    }
    return devices;
}

} // namespace

// make_run_backends without twin sharing.
std::vector<std::unique_ptr<Backend>> make_unshared_run_backends(const std::string& choice, const std::string& devices,
                                                                 int threads, std::string& note);

int usable_cores(int local_processes) {
    const int machine = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    int allowed = machine;
    cpu_set_t mask;
    if (sched_getaffinity(0, sizeof(mask), &mask) == 0) allowed = std::max(1, CPU_COUNT(&mask));
    // A restricted mask was already cut to this process's share; a full one
    // is shared with the other processes of the node.
    if (allowed < machine) return allowed;
    return std::max(1, machine / std::max(1, local_processes));
}

std::unique_ptr<Backend> share_twins(std::unique_ptr<Backend> backend) {
    if (!twin_sharing_enabled()) return backend;
    return std::make_unique<TwinSharingBackend>(std::move(backend));
}

TwinIndex twins_for(const SweepSpec& spec) { return twin_sharing_enabled() ? TwinIndex(spec) : TwinIndex(); }

std::string twin_sharing_summary(std::span<const std::unique_ptr<Backend>> backends) {
    std::int64_t requested = 0, computed = 0;
    for (const auto& backend : backends)
        if (const auto* sharing = dynamic_cast<const TwinSharingBackend*>(backend.get())) {
            requested += sharing->trajectories_requested();
            computed += sharing->trajectories_computed();
        }
    if (computed == requested) return "";
    return std::to_string(computed) + " trajectories computed for " + std::to_string(requested) +
           " cells (stop-gradient twins at h = 0 computed once)";
}

std::vector<std::unique_ptr<Backend>> make_run_backends(const std::string& choice, const std::string& devices,
                                                       int threads, std::string& note) {
    std::vector<std::unique_ptr<Backend>> backends = make_unshared_run_backends(choice, devices, threads, note);
    for (auto& backend : backends) backend = share_twins(std::move(backend));
    return backends;
}

std::vector<std::unique_ptr<Backend>> make_unshared_run_backends(const std::string& choice, const std::string& devices,
                                                                 int threads, std::string& note) {
    std::vector<std::unique_ptr<Backend>> backends;
    if (devices.empty()) {
        backends.push_back(make_backend(choice, threads, note));
        return backends;
    }
    const std::vector<int> list = parse_devices(devices);
    const int cpu_threads = threads > 0 ? threads : usable_cores(static_cast<int>(list.size()));
    if (choice != "cpu") {
        try {
            for (int device : list) backends.push_back(make_cuda_backend_on(device));
            return backends;
        } catch (const BackendError& why) {
            if (choice == "cuda") throw;
            backends.clear();
            note = std::string("CUDA backend unavailable (") + why.what() + "); using " +
                   std::to_string(list.size()) + " CPU backends for --devices";
        }
    }
    for (std::size_t i = 0; i < list.size(); ++i) backends.push_back(make_cpu_backend(cpu_threads));
    return backends;
}

} // namespace collapse::cli
