// collapse-sweep: parse the command line with CLI11 and dispatch.
#include <CLI/CLI.hpp>

#include <csignal>
#include <iostream>
#include <limits>

#include "collapse/storage/error.hpp"
#include "collapse/storage/result_writer.hpp"
#include "collapse/sweep/spec_parser.hpp"
#include "collapse/version.hpp"
#include "commands.hpp"
#include "run_limits.hpp"

namespace {

std::string quoted_command_line(int argc, char** argv) {
    std::string line;
    for (int a = 0; a < argc; ++a) {
        const std::string word = argv[a];
        if (a > 0) line += ' ';
        const bool plain = !word.empty() && word.find_first_of(" \t\"'\\$`") == std::string::npos;
        line += plain ? word : "'" + word + "'";
    }
    return line;
}

} // namespace

int main(int argc, char** argv) {
    using namespace collapse::cli;
    collapse::storage::skip_hdf5_cleanup_at_exit();
    // A closed pipe (`run ... | head`) must not kill a sweep: writes to it
    // fail with EPIPE instead and the progress display stops. A file-size
    // limit (ulimit -f) must fail the write, not kill the process, so the
    // writer can say what is safe in the file.
    std::signal(SIGPIPE, SIG_IGN);
    std::signal(SIGXFSZ, SIG_IGN);
    CLI::App app{"collapse-sweep: GPU-accelerated phase diagrams of representation collapse", "collapse-sweep"};
    app.set_version_flag("--version", std::string("collapse-sweep ") + collapse::tool_version + " (" + collapse::git_sha + ")");
    app.require_subcommand(1);

    RunOptions run;
    run.command_line = quoted_command_line(argc, argv);
    auto* run_app = app.add_subcommand("run", "Run a sweep into an HDF5 file");
    run_app->add_option("spec", run.spec_path, "Sweep file (TOML)")->required();
    run_app->add_option("-o,--output", run.output_path, "Output HDF5 file (default: SPEC name with .h5)");
    run_app->add_option("--backend", run.backend, "auto, cpu or cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
    run_app->add_option("--threads", run.threads, "CPU threads (default: all)")->check(integer_option(0, max_thread_count()));
    run_app->add_option("--batch-size", run.batch_size, "Trajectories per batch (default: the backend's)")
        ->check(integer_option(1, std::numeric_limits<std::int64_t>::max()));
    run_app->add_option("--shard", run.shard, "Run shard I of N (I/N), for job arrays");
    run_app->add_option("--devices", run.devices, "One backend per listed device, e.g. 0,1 (CPU backends with --backend cpu)");
    run_app->add_option("--write-interval", run.write_interval,
                        "Store finished batches together, at most every SECONDS (default 0: each at once, so a kill "
                        "loses nothing finished; docs/format.md)")
        ->check(seconds_option(3600));
    run_app->add_flag("--resume", run.resume, "Continue an interrupted run: only trajectories not yet run");
    run_app->add_flag("--overwrite", run.overwrite, "Replace an existing output file");
    run_app->add_option("--set", run.overrides, "Override a spec key: section.key=value (TOML value)");
    run_app->add_flag("-q,--quiet", run.quiet, "No progress output");

    ValidateOptions validate;
    auto* validate_app = app.add_subcommand("validate", "Check a sweep file; print the grid, FLOP and a time estimate");
    validate_app->add_option("spec", validate.spec_path, "Sweep file (TOML)")->required();
    validate_app->add_option("--set", validate.overrides, "Override a spec key: section.key=value");
    validate_app->add_option("--backend", validate.backend, "Backend to time: auto, cpu or cuda")
        ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
    validate_app->add_option("--threads", validate.threads, "CPU threads (default: all)")->check(CLI::NonNegativeNumber);
    validate_app->add_flag("--no-timing", validate.no_timing, "Only parse and describe; time nothing");

    std::string info_path;
    auto* info_app = app.add_subcommand("info", "Axes, progress, status counts and provenance of an output file");
    info_app->add_option("file", info_path, "Output HDF5 file")->required();

    std::string merge_output;
    std::vector<std::string> merge_shards;
    bool merge_overwrite = false;
    auto* merge_app = app.add_subcommand("merge", "Build one virtual HDF5 file over shard files");
    merge_app->add_option("output", merge_output, "Merged file to create")->required();
    merge_app->add_option("shards", merge_shards, "Shard files")->required();
    merge_app->add_flag("--overwrite", merge_overwrite, "Replace an existing merged file");

    RefineCommandOptions refine;
    refine.command_line = run.command_line;
    auto* refine_app = app.add_subcommand("refine", "Bisect phase boundaries of a finished sweep into /boundaries/<axis>");
    refine_app->add_option("file", refine.path, "Finished output HDF5 file")->required();
    refine_app->add_option("--axis", refine.axis, "Axis to refine along: frustration or lr")->required();
    refine_app->add_option("--quantity", refine.quantity, "collapsed_fraction (default) or diverged_fraction");
    refine_app->add_option("--level", refine.level, "Level the quantity crosses, in (0, 1) (default 0.5)");
    refine_app->add_option("--tol", refine.tol, "Stop when the bracket is this narrow, in axis units (default 1e-3)");
    refine_app->add_option("--backend", refine.backend, "auto, cpu or cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
    refine_app->add_option("--threads", refine.threads, "CPU threads (default: all)")
        ->check(integer_option(0, max_thread_count()));
    refine_app->add_flag("-q,--quiet", refine.quiet, "No progress output");

    ReplayOptions replay;
    replay.command_line = run.command_line;
    auto* replay_app = app.add_subcommand("replay", "Re-run one trajectory of a sweep file with dense traces and states");
    replay_app->add_option("file", replay.path, "Sweep output HDF5 file")->required();
    replay_app->add_option("--at", replay.at, "The trajectory: axis=value,...,seed=S (axes of one value may be left out)")
        ->required();
    replay_app->add_option("--every", replay.every, "Record every K steps (default 1)")->check(CLI::PositiveNumber);
    replay_app->add_option("--state-at", replay.state_at, "Also store the full state at these steps: S1,S2,...");
    replay_app->add_option("-o,--output", replay.output_path, "Output HDF5 file (default: FILE-stem.replay.h5)");
    replay_app->add_option("--backend", replay.backend, "auto, cpu or cuda (default: the one that made the file)")
        ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
    replay_app->add_option("--threads", replay.threads, "CPU threads (default: all)")->check(CLI::NonNegativeNumber);
    replay_app->add_flag("--overwrite", replay.overwrite, "Replace an existing output file");
    replay_app->add_flag("-q,--quiet", replay.quiet, "No summary line");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& error) {
        if (error.get_exit_code() == 0) return app.exit(error); // --help, --version
        std::cerr << "error: " << error.what() << " (see collapse-sweep --help)\n";
        return exit_usage;
    }
    try {
        if (*run_app) return run_command(run);
        if (*validate_app) return validate_command(validate);
        if (*info_app) return info_command(info_path);
        if (*merge_app) return merge_command(merge_output, merge_shards, merge_overwrite);
        if (*refine_app) return refine_command(refine);
        if (*replay_app) return replay_command(replay);
    } catch (const collapse::SpecError& error) {
        std::cerr << "error: " << error.what() << '\n';
        return exit_usage;
    } catch (const UsageError& error) {
        std::cerr << "error: " << error.what() << '\n';
        return exit_usage;
    } catch (const collapse::storage::SpecMismatchError& error) {
        std::cerr << "error: " << error.what() << '\n';
        return exit_usage;
    } catch (const std::exception& error) {
        std::cerr << "error: " << error.what() << '\n';
        return exit_runtime_error;
    }
    return exit_usage;
}
