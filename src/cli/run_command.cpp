// `collapse-sweep run`: spec -> backend -> scheduler -> HDF5, with resume,
// shards and a clean stop on SIGINT/SIGTERM.
#include <csignal>
#include <filesystem>
#include <iostream>

#include "collapse/backend/backend.hpp"
#include "collapse/model/setup.hpp"
#include "collapse/scheduler/parallel_sweep.hpp"
#include "collapse/scheduler/sweep_runner.hpp"
#include "collapse/storage/error.hpp"
#include "collapse/storage/result_writer.hpp"
#include "collapse/sweep/grid.hpp"
#include "collapse/sweep/spec_parser.hpp"
#include "commands.hpp"
#include "progress.hpp"
#include "run_limits.hpp"
#include "run_modes.hpp"

namespace collapse::cli {
namespace {

std::atomic<bool> stop_requested{false};

// First signal: finish the batch in flight, flush, close, exit 3. A second
// one falls through to the default action, for a user who really means it.
extern "C" void request_stop(int signal_number) {
    stop_requested.store(true);
    std::signal(signal_number, SIG_DFL);
}

// A --resume over at least this many trajectories announces the status read (~1 s and more).
constexpr std::int64_t resume_notice_trajectories = 1 << 26;

constexpr int stop_signals[] = {SIGINT, SIGTERM, SIGHUP};

// Installed before anything is written, so a signal during set-up (creating
// the file, the --resume open, the per-seed arrays) also ends in exit 3 and
// a readable file rather than in the default action.
struct StopSignals {
    StopSignals() {
        stop_requested = false;
        for (int number : stop_signals) std::signal(number, request_stop);
    }
    ~StopSignals() {
        for (int number : stop_signals) std::signal(number, SIG_DFL);
    }
};

std::string default_output_path(const std::string& spec_path, const std::string& shard) {
    std::string stem = std::filesystem::path(spec_path).stem().string();
    if (!shard.empty()) {
        const ShardSelection selection = parse_shard(shard);
        stem += ".shard-" + std::to_string(selection.index) + "-of-" + std::to_string(selection.count);
    }
    return stem + ".h5";
}

} // namespace

int run_command(const RunOptions& options) {
    // mpirun/srun: one rank of a distributed run. A launch of one rank says
    // so in its environment and runs exactly like a plain one, without MPI.
    const mpi::LaunchInfo launch = mpi::detect_launch();
    if (launch.launched && launch.world_size != 1) return run_mpi_command(options, launch);
    return run_single_process(options);
}

int run_single_process(const RunOptions& options) {
    const StopSignals signals;
    if (options.resume && options.overwrite) throw UsageError("--resume and --overwrite contradict each other");
    const SweepSpec spec = parse_sweep_spec_file(options.spec_path, options.overrides);
    const Grid grid(spec);
    ShardSelection shard;
    try {
        if (!options.shard.empty()) shard = parse_shard(options.shard);
    } catch (const std::invalid_argument& error) {
        throw UsageError(error.what());
    }
    const std::string output = options.output_path.empty() ? default_output_path(options.spec_path, options.shard)
                                                           : options.output_path;
    const bool exists = std::filesystem::exists(output);
    if (exists && !options.resume && !options.overwrite)
        throw UsageError("output " + output + " exists; pass --resume to continue it or --overwrite to replace it");
    if (!exists && options.resume) throw UsageError("--resume: output " + output + " does not exist");

    std::string note;
    std::vector<std::unique_ptr<Backend>> backends;
    try {
        backends = make_run_backends(options.backend, options.devices, options.threads, note);
    } catch (const BackendError& error) {
        throw UsageError(std::string("--backend ") + options.backend + ": " + error.what());
    }
    if (!note.empty() && !options.quiet) std::cerr << "note: " << note << '\n';

    const auto interrupted = [&](storage::ResultWriter* writer) {
        if (writer != nullptr) writer->close();
        if (!options.quiet) {
            std::cerr << "stopped by signal";
            if (writer != nullptr) std::cerr << "; continue with: " << resume_command(options, output);
            std::cerr << '\n';
        }
        return exit_interrupted;
    };
    if (stop_requested) return interrupted(nullptr);

    Backend* const backend = backends.front().get();
    std::string device_name = backend->device_name();
    if (!options.devices.empty()) device_name += " (--devices " + options.devices + ")";
    storage::Provenance provenance{options.command_line, backend->name(), device_name};
    FlatRange range = shard_range(grid.size(), shard);
    // Memory is checked before the file is made or opened (docs/cli.md, "Limits").
    std::vector<Backend*> backend_list;
    for (const auto& each : backends) backend_list.push_back(each.get());
    const std::int64_t batch_size =
        fit_batch_to_memory(spec, backend_list,
                            options.batch_size > 0 ? options.batch_size : backend->default_batch_size(spec),
                            options.batch_size > 0, range.size());
    // The trajectories to run, as runs of consecutive flat indices: the whole
    // range for a new file; on --resume, those of the file's range with
    // status -1, read block by block so memory stays O(block), not O(grid).
    PendingSet pending({range});
    std::unique_ptr<storage::ResultWriter> writer;
    if (options.resume) {
        // Every refusal before anything is written: a refused --resume leaves
        // the file byte-identical.
        const storage::ShardRange owned = storage::ResultWriter::check_resumable(output, spec, grid);
        // The file knows which shard it is; --shard, if given, must agree.
        if (!options.shard.empty() && (owned.index != shard.index || owned.count != shard.count))
            throw UsageError("--resume: " + output + " is shard " + std::to_string(owned.index) + "/" +
                             std::to_string(owned.count) + ", not " + options.shard + "; nothing was written");
        pending = PendingSet();
        // Reading a status costs ~15 ns per trajectory even where nothing was
        // written yet (HDF5's per-chunk work): 15 s for 10^9. Say so.
        if (!options.quiet && range.size() >= resume_notice_trajectories)
            std::cerr << "collapse-sweep: reading the status of " << range.size() << " trajectories in " << output
                      << " to find those not run yet\n";
        writer = storage::ResultWriter::resume(output, spec, grid, provenance,
                                               [&](std::int64_t first, std::span<const std::int8_t> block) {
                                                   pending.add_not_run(first, block);
                                               });
    } else {
        // The per-seed arrays go into the file before it appears under its name.
        writer = storage::ResultWriter::create(output, spec, grid, provenance,
                                               storage::ShardRange{shard.index, shard.count, range.begin, range.end},
                                               options.overwrite,
                                               [&](std::int64_t seed) { return make_seed_data(spec, seed); });
    }
    writer->coalesce_writes(options.write_interval);
    // Per-seed arrays are a pure function of the seed: a resumed file gets
    // them again, in case a writer older than create's `seeds` left them unfinished.
    if (spec.output.save_initial && options.resume)
        for (std::int64_t seed = 0; seed < spec.seeds; ++seed) {
            if (stop_requested) return interrupted(writer.get());
            writer->write_seed_data(make_seed_data(spec, seed));
        }
    if (stop_requested) return interrupted(writer.get());

    if (!options.quiet)
        std::cerr << "collapse-sweep: " << pending.size() << " trajectories to run (grid " << grid.size() << ") on "
                  << backend->name() << " [" << device_name << "], batches of " << batch_size << " -> "
                  << output << '\n';

    ProgressDisplay display(stderr, options.quiet);
    // Trajectories safely in the file, for the message of a run that fails midway.
    const std::int64_t finished_before = range.size() - pending.size();
    std::atomic<std::int64_t> written{0};
    const auto write = [&](const BatchOutput& batch) {
        writer->write_batch(batch);
        written += static_cast<std::int64_t>(batch.size());
    };
    SweepReport report;
    try {
        if (backends.size() == 1) {
            report = run_sweep(spec, grid, *backend, pending, batch_size, write,
                               [&](const SweepProgress& progress) { display.update(progress); }, stop_requested);
        } else {
            // --devices: every backend pulls the next batch when it is free.
            PendingQueue queue(pending, batch_size, twins_for(spec));
            const std::int64_t total = pending.size();
            report = run_sweep_pulling(spec, grid, backend_list, [&] { return queue.next(); }, write,
                                       [&](SweepProgress progress) {
                                           progress.trajectories_total = total;
                                           display.update(progress);
                                       },
                                       stop_requested);
            report.progress.trajectories_total = total;
        }
    } catch (const storage::OutOfSpaceError&) {
        throw; // already says what is safe and how to continue
    } catch (const std::exception& error) {
        throw std::runtime_error(run_failure_message(error, finished_before + written.load(), range.size(), output,
                                                     resume_command(options, output)));
    }
    writer->close();
    display.finish(report.progress, report.interrupted);
    if (const std::string shared = twin_sharing_summary(backends); !shared.empty() && !options.quiet)
        std::cerr << "collapse-sweep: " << shared << '\n';
    if (report.interrupted) return interrupted(writer.get());
    return exit_ok;
}

} // namespace collapse::cli
