// Limits `run` and `refine` check before they touch a file (docs/cli.md,
// "Limits"), and the message of a run that fails midway.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "collapse/backend/backend.hpp"
#include "commands.hpp"

namespace collapse::cli {

// The most threads --threads accepts: 4 x the hardware threads, at least
// 1024. Far more crashes libgomp (a million gave a SIGSEGV).
int max_thread_count();

// CLI11 checks on the option's own text, before any conversion, so that
// `--batch-size 99999999999999999999999` is an error and not silently
// clamped to 2^63-1: an integer literal in [low, high].
CLI::Validator integer_option(std::int64_t low, std::int64_t high);
// The same for a number of seconds from 0 to `high` (CLI::Range prints its
// bounds as 0.000000).
CLI::Validator seconds_option(int high);

// The batch size to run with: `batch_size`, unless the memory the backends
// have cannot hold it. Then a batch size the user gave (`given`) is refused
// with UsageError (exit 2) naming both numbers and the keys that drive them;
// a default one is halved until it fits. A spec whose trajectories in flight
// alone cannot fit is always refused. `pending` caps the batch.
std::int64_t fit_batch_to_memory(const SweepSpec& spec, const std::vector<Backend*>& backends,
                                 std::int64_t batch_size, bool given, std::int64_t pending);

// `validate`'s memory line: one trajectory's working set on the host and what
// the host has; throws UsageError when not even one trajectory fits.
std::string describe_and_check_memory(const SweepSpec& spec);

// The command that continues this run (with every --set, so it is accepted).
std::string resume_command(const RunOptions& options, const std::string& output);

// The exit-1 message of a run that failed midway: the cause, how many
// trajectories are safely in the file, and how to continue.
std::string run_failure_message(const std::exception& error, std::int64_t safe, std::int64_t total,
                                const std::string& output, const std::string& resume);

} // namespace collapse::cli
