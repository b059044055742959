#include "collapse/backend/memory_budget.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include "collapse/integrators/runge_kutta4.hpp"
#include "collapse/model/layout.hpp"

namespace collapse {
namespace {

constexpr std::uint64_t saturated = std::numeric_limits<std::uint64_t>::max();

// Saturating arithmetic: a spec whose working set overflows 64 bits must still
// be refused with a number, not wrap around to something that "fits".
std::uint64_t add(std::uint64_t a, std::uint64_t b) { return a > saturated - b ? saturated : a + b; }
std::uint64_t mul(std::uint64_t a, std::uint64_t b) {
    std::uint64_t product = 0;
    return __builtin_mul_overflow(a, b, &product) ? saturated : product;
}
std::uint64_t u(std::int64_t value) { return value > 0 ? static_cast<std::uint64_t>(value) : 0; }

// The number after `key` in a "key value" text file (memory.stat, meminfo).
bool read_keyed_number(const std::string& path, const std::string& key, std::uint64_t& value) {
    std::ifstream file(path);
    std::string name;
    std::uint64_t number = 0;
    while (file >> name >> number) {
        if (name == key) {
            value = number;
            return true;
        }
        file.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
    }
    return false;
}

bool read_single_number(const std::string& path, std::uint64_t& value) {
    std::ifstream file(path);
    std::string text;
    if (!(file >> text) || text == "max") return false;
    try {
        std::size_t used = 0;
        value = std::stoull(text, &used);
        return used == text.size();
    } catch (const std::exception&) {
        return false;
    }
}

// What the tightest memory cgroup this process is in still allows, walking
// from its own cgroup up (a Slurm job's limit is often on an ancestor).
bool cgroup_room(std::uint64_t& room, std::string& where) {
    std::ifstream membership("/proc/self/cgroup");
    std::string line;
    bool found = false;
    while (std::getline(membership, line)) {
        // "0::/path" (v2) or "N:memory:/path" (v1)
        const std::size_t first = line.find(':'), second = line.find(':', first + 1);
        if (first == std::string::npos || second == std::string::npos) continue;
        const std::string controllers = line.substr(first + 1, second - first - 1);
        const bool v2 = controllers.empty();
        if (!v2 && controllers.find("memory") == std::string::npos) continue;
        std::string path = line.substr(second + 1);
        const std::string root = v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory";
        for (;;) {
            std::uint64_t limit = 0, usage = 0, inactive_file = 0;
            const std::string directory = root + (path == "/" ? "" : path);
            if (read_single_number(directory + (v2 ? "/memory.max" : "/memory.limit_in_bytes"), limit) &&
                limit < (std::uint64_t{1} << 60) &&
                read_single_number(directory + (v2 ? "/memory.current" : "/memory.usage_in_bytes"), usage)) {
                // Page cache inside the cgroup is reclaimed before an OOM kill.
                read_keyed_number(directory + "/memory.stat", v2 ? "inactive_file" : "total_inactive_file", inactive_file);
                const std::uint64_t used = usage > inactive_file ? usage - inactive_file : 0;
                const std::uint64_t left = limit > used ? limit - used : 0;
                if (!found || left < room) {
                    room = left;
                    where = "cgroup memory limit " + format_bytes(limit) + " (" + directory + ")";
                    found = true;
                }
            }
            if (path.empty() || path == "/") break;
            const std::size_t slash = path.rfind('/');
            path = slash == 0 ? "/" : path.substr(0, slash);
        }
    }
    return found;
}

} // namespace

TrajectoryMemory host_trajectory_memory(const SweepSpec& spec) {
    const ModelShape& shape = spec.shape;
    const bool teacher = shape.kind == ModelKind::teacher_student;
    const std::uint64_t K = u(shape.classes), N = mul(u(shape.classes), u(shape.samples_per_class)), d = u(shape.dim),
                        p = teacher ? u(shape.input_dim) : 0, h = u(spec.max_head_dim());
    const std::uint64_t real = spec.integrator.precision == Precision::float32 ? 4 : 8;
    // StateLayout and WorkspaceLayout, with the sizes in 64 bits: N is an int
    // but N*d need not fit the layouts' arithmetic on a 32-bit size_t.
    const std::uint64_t state = add(add(teacher ? mul(d, p) : mul(N, d), mul(K, d)), mul(2 * h, d));
    const std::uint64_t padded_classes = (K + 15) / 16 * 16;
    std::uint64_t workspace = add(add(mul(4 * d, d), mul(h, d)), add(mul(3, mul(K, d)), add(8 * d, mul(d, padded_classes))));
    if (teacher) workspace = add(workspace, add(mul(2, mul(N, d)), mul(2, mul(p, d))));
    const std::uint64_t scratch_vectors = spec.integrator.method == IntegratorMethod::rk4 ? RungeKutta4::scratch_vectors : 0;

    TrajectoryMemory memory;
    memory.state = mul(state, real);
    memory.gradient = mul(state, real);
    memory.workspace = mul(add(workspace, mul(scratch_vectors, state)), real);
    // draw_seed (doubles and three int arrays of N) plus make_trajectory's
    // setup (two int arrays of N, degrees, inputs and the initial state).
    const std::uint64_t draws = add(mul(8, add(add(teacher ? 0 : mul(N, d), mul(K, d)),
                                               add(mul(2 * h, d), add(mul(d, p), add(mul(N, p), mul(K, p)))))),
                                    mul(3 * sizeof(int), N));
    const std::uint64_t setup = add(mul(2 * sizeof(int), N), mul(real, add(K, add(mul(N, p), state))));
    memory.setup = add(draws, setup);
    // Trace points: record_steps gives at most min(record_points, max_steps + 1).
    const std::uint64_t trace_points =
        std::min<std::uint64_t>(u(spec.output.record_points), add(u(spec.integrator.max_steps), 1));
    std::uint64_t output = add(mul(4, trace_points), add(mul(K, d), mul(d, d)));
    if (spec.output.save_samples) output = add(output, mul(N, d));
    if (spec.output.save_initial) output = add(output, mul(2 * h, d));
    memory.output = add(mul(8, output), 256); // summary, theory, flat index
    return memory;
}

HostMemory available_host_memory() {
    HostMemory memory;
    std::uint64_t kibibytes = 0;
    if (read_keyed_number("/proc/meminfo", "MemAvailable:", kibibytes)) {
        memory.bytes = mul(kibibytes, 1024);
        memory.source = "MemAvailable in /proc/meminfo";
    } else {
        const long pages = sysconf(_SC_AVPHYS_PAGES), page_size = sysconf(_SC_PAGE_SIZE);
        if (pages > 0 && page_size > 0) {
            memory.bytes = mul(static_cast<std::uint64_t>(pages), static_cast<std::uint64_t>(page_size));
            memory.source = "free pages (sysconf)";
        }
    }
    std::uint64_t room = 0;
    std::string where;
    if (cgroup_room(room, where) && (memory.bytes == 0 || room < memory.bytes)) {
        memory.bytes = room;
        memory.source = "what is left of the " + where;
    }
    return memory;
}

std::uint64_t MemoryBudget::needed() const {
    return add(fixed, add(mul(per_trajectory, u(in_flight)), mul(per_batch_slot, u(batch_size))));
}

MemoryBudget cpu_memory_budget(const SweepSpec& spec, int threads, std::int64_t batch_size, const HostMemory& host) {
    const TrajectoryMemory memory = host_trajectory_memory(spec);
    MemoryBudget budget;
    budget.resource = "host memory";
    budget.available_source = host.source;
    budget.available = host.bytes;
    budget.per_trajectory = memory.compute();
    // A thread never holds more than one trajectory, and a batch smaller than
    // the thread count leaves threads idle.
    budget.in_flight = std::max<std::int64_t>(1, std::min<std::int64_t>(threads, batch_size));
    // Two output buffers (one computing, one being written) and the writer's
    // reordered copy of one array.
    budget.per_batch_slot = mul(3, memory.output);
    budget.batch_size = batch_size;
    budget.breakdown = "state " + format_bytes(memory.state) + ", gradient " + format_bytes(memory.gradient) +
                       ", workspace " + format_bytes(memory.workspace) + ", setup and random draws " +
                       format_bytes(memory.setup);
    return budget;
}

std::string format_bytes(std::uint64_t bytes) {
    if (bytes == saturated) return "more than 16 EiB";
    static const char* const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double value = static_cast<double>(bytes);
    int unit = 0;
    while (value >= 1024 && unit < 6) {
        value /= 1024;
        ++unit;
    }
    char text[32];
    std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", value, units[unit]);
    return text;
}

namespace {

// The spec keys a trajectory's size grows with, with their values.
std::string size_drivers(const SweepSpec& spec) {
    const ModelShape& shape = spec.shape;
    std::ostringstream text;
    text << "model.classes = " << shape.classes << ", model.samples_per_class = " << shape.samples_per_class
         << ", model.dim = " << shape.dim;
    if (shape.kind == ModelKind::teacher_student) text << ", model.input_dim = " << shape.input_dim;
    if (spec.max_head_dim() > 0) text << ", grid.head_dim up to " << spec.max_head_dim();
    if (spec.integrator.precision == Precision::float64) text << ", integrator.precision = float64";
    if (spec.integrator.method == IntegratorMethod::rk4) text << ", integrator.method = rk4";
    return text.str();
}

} // namespace

std::vector<std::string> memory_shortfalls(const SweepSpec& spec, const std::vector<MemoryBudget>& budgets) {
    std::map<std::string, std::vector<const MemoryBudget*>> by_resource;
    for (const MemoryBudget& budget : budgets) by_resource[budget.resource].push_back(&budget);
    std::vector<std::string> messages;
    for (const auto& [resource, shares] : by_resource) {
        std::uint64_t needed = 0, in_flight_bytes = 0;
        std::int64_t in_flight = 0, batch = 0;
        for (const MemoryBudget* share : shares) {
            needed = add(needed, share->needed());
            in_flight_bytes = add(in_flight_bytes, add(share->fixed, mul(share->per_trajectory, u(share->in_flight))));
            in_flight += share->in_flight;
            batch += share->batch_size;
        }
        const MemoryBudget& first = *shares.front();
        if (first.available == 0 || needed <= first.available) continue;
        std::ostringstream text;
        text << "not enough " << resource << ": the run needs " << format_bytes(needed) << " but "
             << format_bytes(first.available) << " is available (" << first.available_source << "). ";
        if (first.in_flight > 0)
            text << "One trajectory needs " << format_bytes(first.per_trajectory) << " (" << first.breakdown << "; "
                 << size_drivers(spec) << ")";
        else
            text << "The batch needs " << format_bytes(in_flight_bytes) << " whatever its size (" << first.breakdown
                 << "; " << size_drivers(spec) << ")";
        if (in_flight > 1) text << ", times " << in_flight << " in flight (--threads) = " << format_bytes(in_flight_bytes);
        if (first.per_batch_slot > 0)
            text << ", plus " << format_bytes(mul(first.per_batch_slot, u(batch)))
                 << (first.in_flight > 0 ? " of output buffers" : " of per-trajectory pools") << " for batches of "
                 << batch << " (--batch-size; output.record_points" << (spec.output.save_samples ? ", output.save_samples" : "")
                 << ")";
        text << ". ";
        if (in_flight_bytes > first.available)
            text << (in_flight > 1 ? "Use fewer threads (--threads) or a smaller model."
                                   : "A trajectory of this size cannot run here: make the model smaller.");
        else
            text << "Use --batch-size " << std::max<std::int64_t>(1, largest_fitting_batch(first)) << " or less.";
        messages.push_back(text.str());
    }
    return messages;
}

std::int64_t largest_fitting_batch(const MemoryBudget& budget) {
    const std::uint64_t in_flight = add(budget.fixed, mul(budget.per_trajectory, u(budget.in_flight)));
    if (budget.available == 0) return std::numeric_limits<std::int64_t>::max();
    if (in_flight >= budget.available) return 0;
    if (budget.per_batch_slot == 0) return std::numeric_limits<std::int64_t>::max();
    const std::uint64_t slots = (budget.available - in_flight) / budget.per_batch_slot;
    return static_cast<std::int64_t>(std::min<std::uint64_t>(slots, std::numeric_limits<std::int64_t>::max()));
}

} // namespace collapse

#include "collapse/backend/backend.hpp"

namespace collapse {

std::vector<MemoryBudget> Backend::memory_budgets(const SweepSpec& spec, std::int64_t batch_size) const {
    return {cpu_memory_budget(spec, 1, batch_size, available_host_memory())};
}

} // namespace collapse
