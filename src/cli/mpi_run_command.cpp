// `collapse-sweep run` under mpirun/srun (docs/scaling.md): every rank runs
// one backend and writes its own rank file OUT.rank-<r>-of-<R>.h5; rank 0
// hands out batches of pending trajectories on request (and computes too, on
// a second thread), then writes OUT.h5 as a virtual file over the rank files.
#include <csignal>
#include <filesystem>
#include <functional>
#include <iostream>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "collapse/model/setup.hpp"
#include "collapse/storage/error.hpp"
#include "collapse/storage/merge.hpp"
#include "collapse/storage/result_writer.hpp"
#include "collapse/sweep/spec_parser.hpp"
#include "progress.hpp"
#include "run_limits.hpp"
#include "run_modes.hpp"

namespace collapse::cli {
namespace {

namespace fs = std::filesystem;

std::atomic<bool> mpi_stop_requested{false};

// As in the single-process run: the first signal (mpirun forwards SIGTERM
// and SIGINT) finishes the batch in flight; a second one kills.
extern "C" void request_mpi_stop(int signal_number) {
    mpi_stop_requested.store(true);
    std::signal(signal_number, SIG_DFL);
}

std::string rank_file_path(const std::string& output, int rank, int ranks) {
    const fs::path path(output);
    const std::string stem = path.extension() == ".h5" ? path.stem().string() : path.filename().string();
    return (path.parent_path() / (stem + ".rank-" + std::to_string(rank) + "-of-" + std::to_string(ranks) + ".h5"))
        .string();
}

// Rank counts of earlier runs into `output`, found by their rank files, so a
// resume with a different -n can say what it should be.
std::set<int> earlier_rank_counts(const std::string& output) {
    const fs::path path(output);
    const std::string stem = path.extension() == ".h5" ? path.stem().string() : path.filename().string();
    const fs::path folder = path.parent_path().empty() ? fs::path(".") : path.parent_path();
    std::set<int> counts;
    const std::regex pattern(std::regex_replace(stem, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)") +
                             R"(\.rank-\d+-of-(\d+)\.h5)");
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(folder, error)) {
        std::smatch match;
        const std::string name = entry.path().filename().string();
        if (std::regex_match(name, match, pattern)) counts.insert(std::stoi(match[1].str()));
    }
    return counts;
}

struct RankSetup {
    std::unique_ptr<Backend> backend;
    std::int64_t batch_size = 0; // fitted to this rank's memory
    std::unique_ptr<storage::ResultWriter> writer;
    std::vector<std::int8_t> status; // this rank file's statuses (empty: a new file)
};

// Phase 1, before any rank creates anything: may this rank use its paths?
void check_rank_paths(const RunOptions& options, const mpi::Session& session, const std::string& output) {
    const int rank = session.rank(), ranks = session.size();
    const std::string path = rank_file_path(output, rank, ranks);
    const std::string who = "rank " + std::to_string(rank) + ": ";
    if (rank == 0 && fs::exists(output) && !options.resume && !options.overwrite)
        throw UsageError("output " + output + " exists; pass --resume to continue it or --overwrite to replace it");
    if (fs::exists(path) && !options.resume && !options.overwrite)
        throw UsageError(who + path + " exists; pass --resume to continue it or --overwrite to replace it");
    if (!fs::exists(path) && options.resume) {
        std::string hint;
        for (int count : earlier_rank_counts(output))
            hint += (hint.empty() ? "" : " or ") + std::to_string(count);
        throw UsageError(who + "--resume: " + path + " does not exist" +
                         (hint.empty() ? std::string() : "; the run had " + hint + " ranks: resume with mpirun -n " + hint));
    }
}

// Phase 2, still before any rank creates anything: the backend, and the
// memory check of a plain run (docs/cli.md, "Limits") against this rank's
// backend, so that a spec no rank can hold exits 2 with no file made.
void set_up_backend(RankSetup& setup, const RunOptions& options, const mpi::Session& session, const SweepSpec& spec,
                    const Grid& grid) {
    const int rank = session.rank();
    const std::string who = "rank " + std::to_string(rank) + ": ";
    std::string note;
    const int threads = options.threads > 0 ? options.threads : usable_cores(session.local_size());
    try {
        // One GPU per rank, by node-local rank; CPU threads otherwise.
        if (options.backend == "cpu") {
            setup.backend = make_cpu_backend(threads);
        } else {
            try {
                setup.backend = make_cuda_backend_on(session.local_rank());
            } catch (const BackendError& why) {
                if (options.backend == "cuda") throw;
                note = std::string("CUDA backend unavailable (") + why.what() + "); using the CPU backend";
                setup.backend = make_cpu_backend(threads);
            }
        }
    } catch (const BackendError& error) {
        throw UsageError(who + "--backend " + options.backend + ": " + error.what());
    }
    if (!note.empty() && !options.quiet && rank == 0) std::cerr << "note: " << note << '\n';
    setup.backend = share_twins(std::move(setup.backend));
    Backend* const backends[] = {setup.backend.get()};
    try {
        setup.batch_size = fit_batch_to_memory(
            spec, {backends[0]}, options.batch_size > 0 ? options.batch_size : setup.backend->default_batch_size(spec),
            options.batch_size > 0, grid.size());
    } catch (const UsageError& error) {
        throw UsageError(who + error.what());
    }
}

// Phase 3: the rank file.
void open_rank_file(RankSetup& setup, const RunOptions& options, const mpi::Session& session, const SweepSpec& spec,
                    const Grid& grid, const std::string& output) {
    const int rank = session.rank(), ranks = session.size();
    const std::string path = rank_file_path(output, rank, ranks);
    const std::string who = "rank " + std::to_string(rank) + ": ";
    const storage::Provenance provenance{options.command_line, setup.backend->name(), setup.backend->device_name()};
    if (options.resume) {
        // Every refusal before anything is written (the file stays byte-identical).
        const storage::ShardRange owned = storage::ResultWriter::check_resumable(path, spec, grid);
        if (owned.count != ranks || owned.index != rank || owned.begin != 0 || owned.end != grid.size())
            throw UsageError(who + path + " is not rank " + std::to_string(rank) + " of a " + std::to_string(ranks) +
                             "-rank run (it holds shard " + std::to_string(owned.index) + "/" +
                             std::to_string(owned.count) + "); resume with the same mpirun -n");
        setup.writer = storage::ResultWriter::resume(path, spec, grid, provenance, setup.status);
    } else {
        setup.writer = storage::ResultWriter::create(path, spec, grid, provenance,
                                                     storage::ShardRange{rank, ranks, 0, grid.size()}, options.overwrite);
    }
    setup.writer->coalesce_writes(options.write_interval);
    // Every rank file is complete on its own, like a static shard.
    if (spec.output.save_initial)
        for (std::int64_t seed = 0; seed < spec.seeds; ++seed) setup.writer->write_seed_data(make_seed_data(spec, seed));
}

mpi::RankProgress as_rank_progress(const SweepProgress& progress) {
    mpi::RankProgress out;
    out.done = progress.trajectories_done;
    std::copy(progress.status_counts, progress.status_counts + 3, out.status_counts);
    return out;
}

} // namespace

int run_mpi_command(const RunOptions& options, const mpi::LaunchInfo& launch) {
    if (!mpi::built_with_mpi())
        throw std::runtime_error("launched by MPI (" + launch.evidence +
                                 ") but this collapse-sweep was built without MPI (CMake found none); rebuild with "
                                 "MPI installed, or run without mpirun/srun");
    mpi::Session session;
    if (session.size() == 1) return run_single_process(options);
    const int rank = session.rank();

    // Setup problems found by one rank (its file exists, ...) stop every
    // rank with the same exit code, before any work is handed out.
    int setup_code = exit_ok;
    SweepSpec spec;
    RankSetup setup;
    std::string output;
    const auto attempt = [&](const std::function<void()>& step) {
        try {
            if (setup_code == exit_ok) step();
        } catch (const SpecError& error) {
            setup_code = exit_usage; // every rank parses the same spec: rank 0 speaks for all
            if (rank == 0) std::cerr << "error: " << error.what() << '\n';
        } catch (const UsageError& error) {
            setup_code = exit_usage;
            std::cerr << "error: " + std::string(error.what()) + "\n"; // one write: ranks print at once
        } catch (const storage::SpecMismatchError& error) {
            setup_code = exit_usage;
            std::cerr << "error: " << error.what() << '\n';
        } catch (const std::exception& error) {
            setup_code = exit_runtime_error;
            std::cerr << "error: rank " << rank << ": " << error.what() << '\n';
        }
        return session.all_agree(setup_code == exit_ok);
    };
    const auto failed_elsewhere = [&] { return setup_code == exit_ok ? exit_usage : setup_code; };
    // Checks first, on every rank, so that no rank creates its file when
    // another one is about to refuse.
    if (!attempt([&] {
            if (!options.shard.empty()) throw UsageError("--shard and MPI mode exclude each other: ranks split the grid");
            if (!options.devices.empty())
                throw UsageError("--devices and MPI mode exclude each other: one device per rank");
            if (options.resume && options.overwrite) throw UsageError("--resume and --overwrite contradict each other");
            spec = parse_sweep_spec_file(options.spec_path, options.overrides);
            output = options.output_path.empty() ? fs::path(options.spec_path).stem().string() + ".h5"
                                                 : options.output_path;
            check_rank_paths(options, session, output);
        }))
        return failed_elsewhere();
    if (!attempt([&] { set_up_backend(setup, options, session, spec, Grid(spec)); })) return failed_elsewhere();
    // Chunks are handed out in one size: the largest every rank's memory holds.
    setup.batch_size = session.minimum(setup.batch_size);
    if (!attempt([&] { open_rank_file(setup, options, session, spec, Grid(spec), output); })) {
        if (setup.writer) {
            const std::string made = setup.writer->path();
            setup.writer->close();
            if (!options.resume) fs::remove(made); // made by this attempt: leave no stray rank file
        }
        return failed_elsewhere();
    }
    const Grid grid(spec);

    // The union of every rank file's finished work decides what is pending.
    if (setup.status.empty()) setup.status.assign(static_cast<std::size_t>(grid.size()), -1);
    std::vector<std::int8_t> finished = session.max_on_root(setup.status);
    std::vector<std::int8_t>().swap(setup.status); // 1 B per trajectory of the grid, not needed past this point
    std::int64_t batch_size = setup.batch_size;

    mpi_stop_requested = false;
    std::signal(SIGINT, request_mpi_stop);
    std::signal(SIGTERM, request_mpi_stop);
    Backend* const backend = setup.backend.get();
    const auto write = [&](const BatchOutput& batch) { setup.writer->write_batch(batch); };
    std::mutex progress_mutex;
    SweepProgress progress;
    const auto remember_progress = [&](const SweepProgress& now) {
        const std::lock_guard lock(progress_mutex);
        progress = now;
    };
    const auto current_progress = [&] {
        const std::lock_guard lock(progress_mutex);
        return as_rank_progress(progress);
    };
    SweepReport report;
    try {
        if (rank == 0) {
            const PendingSet pending = pending_trajectories(FlatRange{0, grid.size()}, finished);
            std::vector<std::int8_t>().swap(finished);
            // Without --batch-size, at least four chunks per rank, so that
            // ranks whose trajectories collapse early can take more of them.
            if (options.batch_size <= 0)
                batch_size = std::clamp<std::int64_t>(pending.size() / (4 * session.size()),
                                                      1, batch_size);
            if (!options.quiet)
                std::cerr << "collapse-sweep: MPI mode, " << session.size() << " ranks: " << pending.size()
                          << " trajectories to run (grid " << grid.size() << ") in chunks of " << batch_size
                          << "; rank 0 on " << backend->name() << " [" << backend->device_name() << "] -> " << output
                          << '\n';
            PendingQueue queue(pending, batch_size, twins_for(spec));
            std::atomic<bool> local_done{false};
            std::exception_ptr local_error;
            std::thread compute([&] {
                try {
                    Backend* const list[] = {backend};
                    report = run_sweep_pulling(spec, grid, list, [&] { return queue.next(); }, write,
                                               remember_progress, mpi_stop_requested);
                } catch (...) {
                    local_error = std::current_exception();
                }
                local_done = true;
            });
            ProgressDisplay display(stderr, options.quiet);
            SweepProgress total;
            total.trajectories_total = pending.size();
            try {
                mpi::coordinate_chunks(session, queue, mpi_stop_requested, local_done, current_progress,
                                       [&](const mpi::RankProgress& all) {
                                           total.trajectories_done = all.done;
                                           std::copy(all.status_counts, all.status_counts + 3, total.status_counts);
                                           display.update(total);
                                       });
            } catch (...) {
                mpi_stop_requested = true; // let rank 0's own backend stop soon
                compute.join();
                throw;
            }
            compute.join();
            if (local_error) std::rethrow_exception(local_error);
            display.finish(total, mpi_stop_requested.load());
        } else {
            mpi::RemoteChunkSource source(session, current_progress);
            Backend* const list[] = {backend};
            report = run_sweep_pulling(spec, grid, list, [&] { return source.next(); }, write, remember_progress,
                                       mpi_stop_requested);
            source.sign_off();
        }
        setup.writer->close();
    } catch (const std::exception& error) {
        // The other ranks may be waiting for this one; end the job. What
        // every rank finished is on disk, and --resume completes the rest.
        std::cerr << "error: rank " << rank << ": " << error.what() << "\nerror: aborting the MPI job; finished work "
                  << "is in the rank files, continue with --resume\n";
        try {
            setup.writer->close(); // stores the batches a coalesced window still holds
        } catch (const std::exception&) {
            // already failing: what is in the file stays there
        }
        session.abort(exit_runtime_error);
    }
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);

    // Every rank file is closed once all ranks agree; only then merge.
    const bool complete = session.all_agree(!report.interrupted && !mpi_stop_requested.load());
    if (!complete) {
        if (rank == 0 && !options.quiet)
            std::cerr << "stopped by signal; continue with: mpirun -n " << session.size() << " collapse-sweep run "
                      << options.spec_path << " -o " << output << " --resume\n";
        return exit_interrupted;
    }
    int code = exit_ok;
    if (rank == 0) {
        std::vector<std::string> rank_files;
        for (int r = 0; r < session.size(); ++r) rank_files.push_back(rank_file_path(output, r, session.size()));
        try {
            const storage::MergeReport merged = storage::merge_shards(output, rank_files, true);
            if (!options.quiet)
                std::cerr << "collapse-sweep: " << output << ": virtual file over " << session.size()
                          << " rank files, " << merged.trajectories - merged.not_run << " of " << merged.trajectories
                          << " trajectories finished\n";
        } catch (const std::exception& error) {
            std::cerr << "error: merging the rank files into " << output << ": " << error.what() << '\n';
            code = exit_runtime_error;
        }
    }
    return session.all_agree(code == exit_ok) ? exit_ok : exit_runtime_error;
}

} // namespace collapse::cli
