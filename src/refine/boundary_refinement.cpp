#include "collapse/refine/boundary_refinement.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "collapse/refine/bisection.hpp"
#include "collapse/sweep/grid.hpp"

namespace collapse::refine {
namespace {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

// One boundary: a combination of the other axes and its bracket [a, b]
// (axis order, not necessarily a < b); `a_above` is the side of the level at a.
struct Bracket {
    bool open = false;     // still being bisected
    bool found = false;    // the grid had a crossing
    double a = nan, b = nan;
    bool a_above = false;
    std::size_t grid_low = 0; // axis index of a on the grid, for the other parameters
    std::vector<std::size_t> grid_crossings; // every j with a crossing between grid values j and j + 1
    std::vector<EvaluatedPoint> points; // grid values, then probes, with per-seed outcomes
    std::vector<double> probe_value, probe_quantity;
};

std::int8_t outcome_of(std::int8_t status, Quantity quantity) {
    if (status < 0) return -1;
    return static_cast<std::int8_t>(status == (quantity == Quantity::collapsed_fraction ? 1 : 2) ? 1 : 0);
}

void set_axis_value(TrajectoryParams& params, const std::string& axis, double value) {
    if (axis == "frustration") params.frustration = value;
    else params.lr = value;
}

// Runs `points` through the unchanged Backend::run_batch in batches of at most
// `batch_size` and returns each point's status.
std::vector<std::int8_t> run_points(const SweepSpec& spec, const std::vector<TrajectoryParams>& points, Backend& backend,
                                    std::size_t batch_size) {
    std::vector<std::int8_t> status(points.size(), -1);
    for (std::size_t first = 0; first < points.size(); first += batch_size) {
        const std::size_t count = std::min(batch_size, points.size() - first);
        const Grid grid = Grid::from_points(spec, {points.begin() + static_cast<long>(first),
                                                   points.begin() + static_cast<long>(first + count)});
        std::vector<std::int64_t> indices(count);
        std::iota(indices.begin(), indices.end(), 0);
        BatchOutput out;
        backend.run_batch(spec, grid, indices, out);
        for (std::size_t b = 0; b < out.size(); ++b)
            status[first + static_cast<std::size_t>(out.flat_index[b])] = static_cast<std::int8_t>(out.summary[b].status);
    }
    return status;
}

// The number of points of a grid at spacing `resolution` over [low, high].
// A ratio within 1e-9 of an integer counts as that integer, so a range of an
// exact number of steps does not lose or gain a point in its last bits.
std::int64_t dense_point_count(double low, double high, double resolution) {
    const double steps = (high - low) / resolution;
    const double nearest = std::round(steps);
    const double whole = std::abs(steps - nearest) <= 1e-9 * std::max(1.0, steps) ? nearest : std::floor(steps);
    return static_cast<std::int64_t>(whole) + 1;
}

} // namespace

const char* quantity_name(Quantity quantity) {
    return quantity == Quantity::collapsed_fraction ? "collapsed_fraction" : "diverged_fraction";
}

storage::BoundaryTable refine_boundaries(const SweepSpec& spec, const std::vector<std::int8_t>& status,
                                         Backend& backend, const RefineOptions& options, RefineReport& report,
                                         const std::function<void(const RoundReport&)>& on_round) {
    if (options.axis != "frustration" && options.axis != "lr")
        throw std::invalid_argument("--axis must be frustration or lr, not '" + options.axis + "'");
    if (!(options.level > 0.0 && options.level < 1.0))
        throw std::invalid_argument("--level must lie strictly between 0 and 1");
    if (!(options.tol > 0.0) || !std::isfinite(options.tol)) throw std::invalid_argument("--tol must be positive");
    const auto found = std::find_if(spec.axes.begin(), spec.axes.end(), [&](const Axis& x) { return x.name == options.axis; });
    if (found == spec.axes.end() || found->values.size() < 2)
        throw std::invalid_argument("--axis " + options.axis + ": the sweep's " + options.axis + " axis has " +
                                    std::to_string(found == spec.axes.end() ? 1 : found->values.size()) +
                                    " value(s); refinement needs at least 2 to bracket a crossing");
    const Axis& axis = *found;
    const auto axis_rank = static_cast<std::size_t>(found - spec.axes.begin());
    const Grid grid(spec);
    if (static_cast<std::int64_t>(status.size()) != grid.size())
        throw std::invalid_argument("the file's status has " + std::to_string(status.size()) + " entries, the grid " +
                                    std::to_string(grid.size()));
    if (std::any_of(status.begin(), status.end(), [](std::int8_t s) { return s < 0; }))
        throw std::invalid_argument("the sweep has trajectories not run yet; finish it (run --resume, or merge the shards) first");

    // Divergence is the quantity: a trajectory stopped at collapse cannot show
    // that it would have diverged later, and near lr_c collapse comes first.
    // So every trajectory refine runs for diverged_fraction runs past
    // collapse, and the sweep's collapsed grid trajectories are re-run so.
    const bool run_past_collapse = options.quantity == Quantity::diverged_fraction;
    SweepSpec run_spec = spec;
    if (run_past_collapse) run_spec.collapse.stop_on_collapse = false;
    const auto batch_size = static_cast<std::size_t>(std::max<std::int64_t>(1, backend.default_batch_size(run_spec)));
    std::vector<std::int8_t> grid_status = status;
    if (run_past_collapse && spec.collapse.stop_on_collapse) {
        std::vector<std::int64_t> stopped;
        std::vector<TrajectoryParams> points;
        for (std::int64_t flat = 0; flat < grid.size(); ++flat)
            if (status[static_cast<std::size_t>(flat)] == static_cast<std::int8_t>(TrajectoryStatus::collapsed)) {
                stopped.push_back(flat);
                points.push_back(grid.params(flat));
            }
        if (on_round && !points.empty()) on_round(RoundReport{0, 0, static_cast<std::int64_t>(points.size()), 0});
        const std::vector<std::int8_t> rerun = run_points(run_spec, points, backend, batch_size);
        for (std::size_t k = 0; k < stopped.size(); ++k) grid_status[static_cast<std::size_t>(stopped[k])] = rerun[k];
        report.grid_reruns = static_cast<std::int64_t>(stopped.size());
    }

    AxisGeometry geometry;
    geometry.samples = spec.shape.samples();
    geometry.scale = options.axis == "frustration" ? AxisScale::frustrated_count
                     : axis.log_spaced            ? AxisScale::logarithmic
                                                  : AxisScale::linear;
    const bool ascending = axis.values[1] > axis.values[0];

    storage::BoundaryTable table;
    table.axis = options.axis;
    std::vector<std::int64_t> other_shape;
    for (std::size_t r = 0; r < spec.axes.size(); ++r)
        if (r != axis_rank) {
            table.coordinates.push_back(spec.axes[r]);
            other_shape.push_back(static_cast<std::int64_t>(spec.axes[r].values.size()));
        }
    std::int64_t combinations = 1;
    for (std::int64_t length : other_shape) combinations *= length;
    const std::int64_t seeds = spec.seeds;
    const std::vector<std::int64_t>& shape = grid.shape();
    // Flat grid index of (combination c, axis index j, seed s).
    auto flat_index = [&](std::int64_t c, std::size_t j, std::int64_t s) {
        std::vector<std::int64_t> index(shape.size());
        index.back() = s;
        for (std::size_t r = spec.axes.size(), o = other_shape.size(); r-- > 0;) {
            if (r == axis_rank) { index[r] = static_cast<std::int64_t>(j); continue; }
            --o;
            index[r] = c % other_shape[o];
            c /= other_shape[o];
        }
        std::int64_t flat = 0;
        for (std::size_t r = 0; r < shape.size(); ++r) flat = flat * shape[r] + index[r];
        return flat;
    };

    std::vector<Bracket> brackets(static_cast<std::size_t>(combinations));
    for (std::int64_t c = 0; c < combinations; ++c) {
        Bracket& bracket = brackets[static_cast<std::size_t>(c)];
        std::vector<double> quantity;
        for (std::size_t j = 0; j < axis.values.size(); ++j) {
            EvaluatedPoint point{axis.values[j], {}};
            for (std::int64_t s = 0; s < seeds; ++s)
                point.outcomes.push_back(
                    outcome_of(grid_status[static_cast<std::size_t>(flat_index(c, j, s))], options.quantity));
            quantity.push_back(seed_fraction(point.outcomes));
            bracket.points.push_back(std::move(point));
        }
        bracket.grid_crossings = all_crossings(quantity, options.level);
        if (bracket.grid_crossings.empty()) continue; // no crossing on the grid: NaN estimate
        // A non-monotone quantity: the first crossing in axis order is refined.
        const std::optional<std::size_t> j = bracket.grid_crossings.front();
        if (bracket.grid_crossings.size() > 1) ++report.non_monotone;
        bracket.found = true;
        bracket.grid_low = *j;
        bracket.a = axis.values[*j];
        bracket.b = axis.values[*j + 1];
        bracket.a_above = at_or_above(quantity[*j], options.level);
        bracket.open = !bracket_done(bracket.a, bracket.b, options.tol, geometry);
        ++report.bracketed;
    }
    report.boundaries = combinations;

    for (int round = 1; round <= options.max_rounds; ++round) {
        std::vector<std::size_t> probing;
        std::vector<double> probe_values;
        std::vector<TrajectoryParams> points;
        for (std::size_t c = 0; c < brackets.size(); ++c) {
            Bracket& bracket = brackets[c];
            if (!bracket.open) continue;
            const double probe = bisection_midpoint(bracket.a, bracket.b, geometry);
            probing.push_back(c);
            probe_values.push_back(probe);
            for (std::int64_t s = 0; s < seeds; ++s) {
                TrajectoryParams params = grid.params(flat_index(static_cast<std::int64_t>(c), bracket.grid_low, s));
                set_axis_value(params, options.axis, probe);
                points.push_back(params);
            }
        }
        if (probing.empty()) break;
        // The whole round in one batch: the backend sees flat indices of a point list.
        const std::vector<std::int8_t> probe_status = run_points(run_spec, points, backend, points.size());

        for (std::size_t p = 0; p < probing.size(); ++p) {
            Bracket& bracket = brackets[probing[p]];
            const double probe = probe_values[p];
            EvaluatedPoint point{probe, {}};
            const std::size_t first = p * static_cast<std::size_t>(seeds);
            for (std::size_t s = 0; s < static_cast<std::size_t>(seeds); ++s)
                point.outcomes.push_back(outcome_of(probe_status[first + s], options.quantity));
            const double quantity = seed_fraction(point.outcomes);
            bracket.probe_value.push_back(probe);
            bracket.probe_quantity.push_back(quantity);
            bracket.points.push_back(std::move(point));
            if (at_or_above(quantity, options.level) == bracket.a_above) bracket.a = probe;
            else bracket.b = probe;
            bracket.open = !bracket_done(bracket.a, bracket.b, options.tol, geometry);
        }
        report.rounds = round;
        report.probes += static_cast<std::int64_t>(probing.size());
        report.trajectories += static_cast<std::int64_t>(points.size());
        if (on_round) {
            RoundReport round_report{round, static_cast<std::int64_t>(probing.size()),
                                     static_cast<std::int64_t>(points.size()), 0};
            for (const Bracket& bracket : brackets) round_report.still_open += bracket.open ? 1 : 0;
            on_round(round_report);
        }
    }

    std::size_t slots = 1;
    for (const Bracket& bracket : brackets) slots = std::max(slots, bracket.probe_value.size());
    table.probe_slots = static_cast<std::int64_t>(slots);
    table.probe_value.assign(brackets.size() * slots, nan);
    table.probe_quantity.assign(brackets.size() * slots, nan);
    std::size_t crossing_slots = 1;
    for (const Bracket& bracket : brackets) crossing_slots = std::max(crossing_slots, bracket.grid_crossings.size());
    table.crossing_slots = static_cast<std::int64_t>(crossing_slots);
    table.crossing_low.assign(brackets.size() * crossing_slots, nan);
    table.crossing_high.assign(brackets.size() * crossing_slots, nan);
    for (std::size_t c = 0; c < brackets.size(); ++c) {
        const Bracket& bracket = brackets[c];
        table.crossings.push_back(static_cast<std::int64_t>(bracket.grid_crossings.size()));
        for (std::size_t k = 0; k < bracket.grid_crossings.size(); ++k) {
            const std::size_t j = bracket.grid_crossings[k];
            const double low = k == 0 ? bracket.a : axis.values[j], high = k == 0 ? bracket.b : axis.values[j + 1];
            table.crossing_low[c * crossing_slots + k] = std::min(low, high);
            table.crossing_high[c * crossing_slots + k] = std::max(low, high);
        }
    }
    for (std::size_t c = 0; c < brackets.size(); ++c) {
        const Bracket& bracket = brackets[c];
        const bool usable = bracket.found && !bracket.open; // open only if max_rounds ran out
        table.estimate.push_back(usable ? bracket_estimate(bracket.a, bracket.b, geometry) : nan);
        table.bracket_low.push_back(bracket.found ? std::min(bracket.a, bracket.b) : nan);
        table.bracket_high.push_back(bracket.found ? std::max(bracket.a, bracket.b) : nan);
        table.standard_error.push_back(usable ? bootstrap_standard_error(bracket.points, ascending, options.level,
                                                                          geometry, options.bootstrap_resamples,
                                                                          0x5eed0000u + c)
                                              : nan);
        table.probes_run.push_back(static_cast<std::int64_t>(bracket.probe_value.size()));
        std::copy(bracket.probe_value.begin(), bracket.probe_value.end(), table.probe_value.begin() + static_cast<long>(c * slots));
        std::copy(bracket.probe_quantity.begin(), bracket.probe_quantity.end(),
                  table.probe_quantity.begin() + static_cast<long>(c * slots));
    }

    // Cost of a dense grid with the same resolution over the same axis range.
    const auto [lowest, highest] = std::minmax_element(axis.values.begin(), axis.values.end());
    double resolution = options.tol;
    if (geometry.scale == AxisScale::frustrated_count) resolution = std::max(resolution, 1.0 / geometry.samples);
    report.dense_trajectories = combinations * dense_point_count(*lowest, *highest, resolution) * seeds;

    table.text_attributes = {{"axis", options.axis},
                             {"quantity", quantity_name(options.quantity)},
                             {"bisection", geometry.scale == AxisScale::logarithmic        ? "geometric"
                                           : geometry.scale == AxisScale::frustrated_count ? "frustrated_count"
                                                                                           : "arithmetic"},
                             {"standard_error_method", "bootstrap over seeds"},
                             {"refined_crossing", "the first crossing in axis order (crossing 0); a non-monotone "
                                                  "quantity's other crossings are recorded, not refined"},
                             {"stop_on_collapse_note",
                              run_past_collapse
                                  ? "diverged_fraction: every trajectory refine ran (probes, and the sweep's "
                                    "collapsed grid trajectories when the sweep stopped at collapse) ran past "
                                    "collapse, since divergence is the quantity"
                                  : "as in the sweep"},
                             {"backend", backend.name()},
                             {"device_name", backend.device_name()}};
    table.number_attributes = {{"level", options.level},
                               {"tol", options.tol},
                               {"seeds", static_cast<double>(seeds)},
                               {"probe_stop_on_collapse", run_spec.collapse.stop_on_collapse ? 1.0 : 0.0},
                               {"grid_trajectories_rerun", static_cast<double>(report.grid_reruns)},
                               {"non_monotone_boundaries", static_cast<double>(report.non_monotone)},
                               {"bootstrap_resamples", static_cast<double>(options.bootstrap_resamples)},
                               {"rounds", static_cast<double>(report.rounds)},
                               {"trajectories_run", static_cast<double>(report.trajectories)},
                               {"dense_grid_trajectories", static_cast<double>(report.dense_trajectories)}};
    return table;
}

std::string non_monotone_warning(const storage::BoundaryTable& table, std::size_t listed) {
    std::ostringstream out;
    std::size_t found = 0;
    const auto slots = static_cast<std::size_t>(table.crossing_slots);
    for (std::size_t c = 0; c < table.crossings.size(); ++c) {
        if (table.crossings[c] < 2 || ++found > listed) continue;
        // The combination's coordinates, row-major over the other axes.
        std::vector<std::string> where(table.coordinates.size());
        std::size_t rest = c;
        for (std::size_t r = table.coordinates.size(); r-- > 0;) {
            const Axis& other = table.coordinates[r];
            std::ostringstream value;
            value << other.name << '=' << other.values[rest % other.values.size()];
            where[r] = value.str();
            rest /= other.values.size();
        }
        out << "\n  at";
        for (const std::string& each : where) out << ' ' << each;
        out << ": crossings in";
        for (std::int64_t k = 0; k < table.crossings[c]; ++k)
            out << (k == 0 ? " " : ", ") << '[' << table.crossing_low[c * slots + static_cast<std::size_t>(k)] << ", "
                << table.crossing_high[c * slots + static_cast<std::size_t>(k)] << ']' << (k == 0 ? " (refined)" : "");
    }
    if (found == 0) return {};
    std::ostringstream head;
    const auto text = [&](const char* key) {
        const auto it = table.text_attributes.find(key);
        return it == table.text_attributes.end() ? std::string("?") : it->second;
    };
    const auto level = table.number_attributes.find("level");
    head << "warning: " << text("quantity") << " crosses "
         << (level == table.number_attributes.end() ? 0.5 : level->second) << " more than once along "
         << table.axis << " (non-monotone) at " << found << " of " << table.crossings.size()
         << " boundaries; the first crossing in axis order is refined, every crossing bracket is in /boundaries/"
         << table.axis << "/crossing_low, crossing_high";
    if (found > listed) out << "\n  ... and " << found - listed << " more";
    return head.str() + out.str();
}

} // namespace collapse::refine
