// The subcommands of collapse-sweep (SPEC §7). Each returns the process exit
// code; errors that map to a code are thrown as UsageError (2) or anything
// else (1) and translated once, in main.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace collapse::cli {

enum ExitCode : int { exit_ok = 0, exit_runtime_error = 1, exit_usage = 2, exit_interrupted = 3 };

// Bad usage or input the user must fix: exit code 2.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct RunOptions {
    std::string spec_path;
    std::string output_path; // empty: derived from the spec name
    std::string backend = "auto";
    int threads = 0;
    std::int64_t batch_size = 0; // 0: the backend's default
    std::string shard;           // "I/N" or empty
    std::string devices;         // --devices "0,1,...": one backend per entry; empty: one backend
    bool resume = false;
    bool overwrite = false;
    bool quiet = false;
    // Seconds finished batches may wait to be stored together (ResultWriter::coalesce_writes).
    double write_interval = 0;
    std::vector<std::string> overrides;
    std::string command_line;
};

int run_command(const RunOptions& options);

struct RefineCommandOptions {
    std::string path;
    std::string axis;
    std::string quantity = "collapsed_fraction";
    double level = 0.5;
    double tol = 1e-3;
    std::string backend = "auto";
    int threads = 0;
    bool quiet = false;
    std::string command_line;
};
int refine_command(const RefineCommandOptions& options);

struct ReplayOptions {
    std::string path;
    std::string at;          // "axis=value,...,seed=S"
    std::int64_t every = 1;  // record every K steps
    std::string state_at;    // "S1,S2,...": full states at these steps
    std::string output_path; // empty: <stem>.replay.h5 in the current directory
    std::string backend;     // empty: the backend that made the file
    int threads = 0;
    bool overwrite = false;
    bool quiet = false;
    std::string command_line;
};
int replay_command(const ReplayOptions& options);
struct ValidateOptions {
    std::string spec_path;
    std::vector<std::string> overrides;
    std::string backend = "auto";
    int threads = 0;
    bool no_timing = false;
};
int validate_command(const ValidateOptions& options);
int info_command(const std::string& path);
int merge_command(const std::string& output_path, const std::vector<std::string>& shard_paths, bool overwrite);

} // namespace collapse::cli
