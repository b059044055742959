// `collapse-sweep refine OUT.h5 --axis frustration|lr ...`: bisect the phase
// boundaries of a finished sweep with new trajectories and store them in
// /boundaries/<axis> of the same file (docs/refinement.md).
#include <filesystem>
#include <iostream>
#include <stdexcept>

#include "collapse/backend/backend.hpp"
#include "collapse/refine/boundary_refinement.hpp"
#include "collapse/storage/boundary_writer.hpp"
#include "collapse/storage/result_reader.hpp"
#include "collapse/sweep/grid.hpp"
#include "collapse/sweep/spec_parser.hpp"
#include "commands.hpp"

namespace collapse::cli {

int refine_command(const RefineCommandOptions& options) {
    refine::RefineOptions refine_options;
    if (options.axis != "frustration" && options.axis != "lr")
        throw UsageError("--axis must be frustration or lr, not '" + options.axis + "'");
    if (options.quantity == "collapsed_fraction") refine_options.quantity = refine::Quantity::collapsed_fraction;
    else if (options.quantity == "diverged_fraction") refine_options.quantity = refine::Quantity::diverged_fraction;
    else throw UsageError("--quantity must be collapsed_fraction or diverged_fraction, not '" + options.quantity + "'");
    if (!(options.level > 0.0 && options.level < 1.0))
        throw UsageError("--level must lie strictly between 0 and 1 (got " + std::to_string(options.level) + ")");
    if (!(options.tol > 0.0)) throw UsageError("--tol must be positive (got " + std::to_string(options.tol) + ")");
    if (!std::filesystem::exists(options.path)) throw UsageError(options.path + ": no such file");
    refine_options.axis = options.axis;
    refine_options.level = options.level;
    refine_options.tol = options.tol;

    SweepSpec spec;
    std::vector<std::int8_t> status;
    {
        const storage::ResultReader reader(options.path);
        if (reader.opened_with_swmr())
            throw std::runtime_error(options.path + " was not closed by its writer (still running, or killed); finish "
                                     "it with `collapse-sweep run ... --resume` first");
        spec = parse_sweep_spec_text(reader.spec_text(), reader.attribute("spec_path"), reader.spec_overrides());
        if (reader.shape() != Grid(spec).shape())
            throw std::runtime_error(options.path + ": /results/status does not have the shape of the stored spec");
        status = reader.status();
    }
    // Fail before computing anything if the file cannot take the result.
    storage::require_closed_output(options.path);

    std::string note;
    std::unique_ptr<Backend> backend;
    try {
        backend = make_backend(options.backend, options.threads, note);
    } catch (const BackendError& error) {
        throw UsageError(std::string("--backend ") + options.backend + ": " + error.what());
    }
    if (!note.empty() && !options.quiet) std::cerr << "note: " << note << '\n';

    refine::RefineReport report;
    storage::BoundaryTable table;
    try {
        table = refine::refine_boundaries(spec, status, *backend, refine_options, report,
                                          [&](const refine::RoundReport& round) {
                                              if (options.quiet) return;
                                              if (round.round == 0) {
                                                  std::cerr << "re-running " << round.trajectories
                                                            << " collapsed grid trajectories past collapse "
                                                               "(divergence is the quantity)\n";
                                                  return;
                                              }
                                              std::cerr << "round " << round.round << ": " << round.probes
                                                        << " probes (" << round.trajectories << " trajectories), "
                                                        << round.still_open << " brackets still open\n";
                                          });
    } catch (const std::invalid_argument& error) {
        throw UsageError(error.what());
    }
    table.text_attributes["command_line"] = options.command_line;
    storage::write_boundaries(options.path, table);

    std::cout << options.path << ": /boundaries/" << options.axis << ": " << report.bracketed << " of "
              << report.boundaries << " boundaries bracketed by the grid; " << report.rounds << " rounds, "
              << report.probes << " probes, " << report.trajectories << " trajectories (a dense grid at this "
              << "resolution: " << report.dense_trajectories << ")";
    if (report.grid_reruns > 0)
        std::cout << "; " << report.grid_reruns << " collapsed grid trajectories re-run past collapse";
    std::cout << std::endl;
    // Warned even with --quiet: a non-monotone quantity changes what the estimate means.
    if (const std::string warning = refine::non_monotone_warning(table); !warning.empty()) std::cerr << warning << '\n';
    return exit_ok;
}

} // namespace collapse::cli
