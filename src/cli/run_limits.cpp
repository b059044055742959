#include "run_limits.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <new>
#include <sstream>
#include <thread>

namespace collapse::cli {

int max_thread_count() {
    const unsigned hardware = std::thread::hardware_concurrency();
    return static_cast<int>(std::max<unsigned>(1024, 4 * hardware));
}

CLI::Validator integer_option(std::int64_t low, std::int64_t high) {
    const std::string range = "an integer from " + std::to_string(low) + " to " + std::to_string(high);
    return CLI::Validator(
        [=](std::string& text) -> std::string {
            std::int64_t value = 0;
            const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
            if (text.empty() || error != std::errc() || end != text.data() + text.size() || value < low || value > high)
                return "value '" + text + "' is not " + range;
            return "";
        },
        "INT in [" + std::to_string(low) + ", " + std::to_string(high) + "]");
}

CLI::Validator seconds_option(int high) {
    const std::string range = "a number of seconds from 0 to " + std::to_string(high);
    return CLI::Validator(
        [=](std::string& text) -> std::string {
            char* end = nullptr;
            const double value = std::strtod(text.c_str(), &end);
            if (text.empty() || end != text.c_str() + text.size() || !(value >= 0 && value <= high))
                return "value '" + text + "' is not " + range;
            return "";
        },
        "SECONDS in [0, " + std::to_string(high) + "]");
}

namespace {

std::vector<MemoryBudget> budgets_for(const SweepSpec& spec, const std::vector<Backend*>& backends,
                                      std::int64_t batch_size) {
    std::vector<MemoryBudget> budgets;
    for (const Backend* backend : backends)
        for (MemoryBudget& budget : backend->memory_budgets(spec, batch_size)) budgets.push_back(std::move(budget));
    return budgets;
}

std::string joined(const std::vector<std::string>& lines) {
    std::string text;
    for (const std::string& line : lines) text += (text.empty() ? "" : "\n") + line;
    return text;
}

} // namespace

std::int64_t fit_batch_to_memory(const SweepSpec& spec, const std::vector<Backend*>& backends,
                                 std::int64_t batch_size, bool given, std::int64_t pending) {
    const std::int64_t effective = std::clamp<std::int64_t>(pending, 1, batch_size);
    std::vector<std::string> shortfalls = memory_shortfalls(spec, budgets_for(spec, backends, effective));
    if (shortfalls.empty()) return batch_size;
    if (given) throw UsageError(joined(shortfalls));
    for (std::int64_t smaller = effective / 2; smaller >= 1; smaller /= 2) {
        shortfalls = memory_shortfalls(spec, budgets_for(spec, backends, smaller));
        if (shortfalls.empty()) return smaller;
    }
    throw UsageError(joined(shortfalls));
}

std::string describe_and_check_memory(const SweepSpec& spec) {
    const HostMemory host = available_host_memory();
    const MemoryBudget one = cpu_memory_budget(spec, 1, 1, host);
    std::ostringstream text;
    text << "memory        " << format_bytes(one.per_trajectory) << " per trajectory in flight (" << one.breakdown
         << "), " << format_bytes(host_trajectory_memory(spec).output) << " per trajectory of a batch's output; "
         << (host.bytes ? format_bytes(host.bytes) + " available (" + host.source + ")" : "host memory unknown")
         << '\n';
    const std::vector<std::string> shortfalls = memory_shortfalls(spec, {one});
    if (!shortfalls.empty()) throw UsageError(spec.source_path + ": " + joined(shortfalls));
    return text.str();
}

std::string resume_command(const RunOptions& options, const std::string& output) {
    // Words outside this set are single-quoted, so the hint pastes into any POSIX shell.
    const auto quoted = [](const std::string& word) {
        if (!word.empty() && word.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                                    "_-+=./,:@%") == std::string::npos)
            return word;
        std::string text = "'";
        for (char c : word) text += c == '\'' ? std::string("'\\''") : std::string(1, c);
        return text + "'";
    };
    std::string command = "collapse-sweep run " + quoted(options.spec_path) + " -o " + quoted(output) + " --resume";
    for (const std::string& override_text : options.overrides) command += " --set " + quoted(override_text);
    return command;
}

std::string run_failure_message(const std::exception& error, std::int64_t safe, std::int64_t total,
                                const std::string& output, const std::string& resume) {
    const bool out_of_memory = dynamic_cast<const std::bad_alloc*>(&error) != nullptr;
    std::ostringstream text;
    text << (out_of_memory ? std::string("out of memory (") + error.what() + ")" : std::string(error.what()));
    text << "; " << safe << " of " << total << " trajectories are safe in " << output << "; ";
    text << (out_of_memory ? "free memory or use a smaller --batch-size or --threads, then " : "fix the cause, then ")
         << "continue with: " << resume;
    return text.str();
}

} // namespace collapse::cli
