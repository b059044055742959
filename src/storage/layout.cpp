#include "layout.hpp"

#include <algorithm>

#include "collapse/record_steps.hpp"
#include "collapse/trajectory/slow_rate_fit.hpp"

namespace collapse::storage::detail {

namespace {

// ~256 KiB of float64 per chunk keeps a chunk inside the 4 MiB chunk cache
// the writer gives each dataset. Capping the trajectories per chunk matters
// more: SWMR never frees a superseded chunk, so a chunk that k batches each
// touch is stored k times over (see docs/format.md, "Chunking").
constexpr std::int64_t chunk_target_elements = 32768;
constexpr std::int64_t max_trajectories_per_chunk = 512;
constexpr std::int64_t max_seeds_per_chunk = 16;

ScaleLayout counting_scale(const std::string& name, std::int64_t length) {
    ScaleLayout scale{name, ElementType::int32, {}, false, length};
    return scale;
}

// The slow_rate fit window and the exact theory trace: what they are and how
// the window is chosen (docs/format.md, "The slow_rate fit window").
void describe_fit_window(FileLayout& layout) {
    const std::string rule =
        "slow_rate = minus the least-squares slope of ln(label_distance) against lr*step over the record points "
        "from slow_rate_first_step to slow_rate_last_step. Usable points run from step 0 up to the first point "
        "that lies past final_step, is not finite, is at or below the round-off floor u * epsilon * "
        "max_k |y_k(final)| / D_ref (epsilon of the run precision), less the trailing points that differ from "
        "their predecessor by at most stall_ulps * epsilon relatively (the state stopped changing); the window is "
        "the usable points whose step is at least half the last usable step. u = floor_ulps in a first pass; if that pass gives a rate "
        "r > 0, u = max(floor_ulps, relaxation_ulps * n) with n = min(1/(lr r), its last step) (round-off "
        "accumulates over the relaxation time) in a second pass, which is the result. Fewer than 3 points: no "
        "window (-1), slow_rate NaN.";
    const std::vector<std::pair<std::string, double>> numbers = {{"floor_ulps", slow_rate_floor_ulps},
                                                                 {"relaxation_ulps", slow_rate_relaxation_ulps},
                                                                 {"stall_ulps", slow_rate_stall_ulps}};
    auto set = [&](const std::string& path, const std::string& description, bool with_numbers) {
        for (DatasetLayout& dataset : layout.datasets)
            if (dataset.path() == path) {
                dataset.description = description;
                if (with_numbers) dataset.numbers = numbers;
            }
    };
    set("/results/slow_rate_first_step", rule, true);
    set("/results/slow_rate_last_step", rule, true);
    set("/results/theory_window_rate", "Plain model only (NaN otherwise, and where slow_rate has no window). " + rule,
        true);
    set("/traces/theory_label_distance",
        "min over label pairs of |y_k - y_l| / D_ref from the eigenmodes of L_G/M: (1 - lr lambda)^step per mode for "
        "gd, exp(-lr step lambda) (the gradient flow) for rk4; every record point, also past final_step. NaN "
        "where there is no closed form (head_dim > 0, teacher_student).",
        false);
}

} // namespace

hid_t file_type_of(ElementType type) {
    switch (type) {
    case ElementType::int8: return H5T_STD_I8LE;
    case ElementType::int32: return H5T_STD_I32LE;
    case ElementType::int64: return H5T_STD_I64LE;
    case ElementType::float32: return H5T_IEEE_F32LE;
    case ElementType::float64: return H5T_IEEE_F64LE;
    }
    return H5I_INVALID_HID;
}

hid_t memory_type_of(ElementType type) {
    switch (type) {
    case ElementType::int8: return H5T_NATIVE_INT8;
    case ElementType::int32: return H5T_NATIVE_INT32;
    case ElementType::int64: return H5T_NATIVE_INT64;
    case ElementType::float32: return H5T_NATIVE_FLOAT;
    case ElementType::float64: return H5T_NATIVE_DOUBLE;
    }
    return H5I_INVALID_HID;
}

ElementType real_type(Precision precision) {
    return precision == Precision::float32 ? ElementType::float32 : ElementType::float64;
}

const DatasetLayout* FileLayout::find(const std::string& path) const {
    for (const DatasetLayout& dataset : datasets)
        if (dataset.path() == path) return &dataset;
    return nullptr;
}

bool is_per_seed(const std::string& group, const std::string& name) {
    return group == "graph" || (group == "initial" && name != "head_A" && name != "head_B");
}

std::vector<std::int64_t> contiguous_chunk(const std::vector<std::int64_t>& shape, std::size_t item_rank,
                                           std::int64_t target_elements, std::int64_t max_items) {
    std::vector<std::int64_t> chunk(shape.size(), 1);
    // Walking inward-out, a dimension is taken whole while the budget allows;
    // the first one that does not fit is split and every outer one gets 1, so
    // each chunk is one contiguous run of flat indices.
    auto fill = [&](std::size_t from, std::size_t to, std::int64_t budget) {
        for (std::size_t d = to; d-- > from;) {
            const std::int64_t length = std::max<std::int64_t>(1, shape[d]);
            if (length <= budget) {
                chunk[d] = length;
                budget /= length;
            } else {
                chunk[d] = std::max<std::int64_t>(1, budget);
                budget = 1;
            }
        }
        return budget;
    };
    const std::int64_t left = fill(item_rank, shape.size(), target_elements);
    fill(0, item_rank, std::min(left, max_items));
    return chunk;
}

FileLayout describe_layout(const SweepSpec& spec, const Grid& grid) {
    FileLayout layout;
    layout.grid_shape = grid.shape();
    layout.steps = record_steps(spec);
    const ModelShape& model = spec.shape;
    const std::int64_t classes = model.classes, dim = model.dim, samples = model.samples();
    const std::int64_t inputs = model.input_dim, head_max = spec.max_head_dim();
    const bool teacher = model.kind == ModelKind::teacher_student;
    const ElementType real = real_type(spec.integrator.precision);

    std::vector<ScaleLayout> grid_scales;
    for (const Axis& axis : spec.axes) {
        const ElementType type = axis.type == Axis::Type::integer   ? ElementType::int32
                                 : axis.type == Axis::Type::boolean ? ElementType::int8
                                                                    : ElementType::float64;
        grid_scales.push_back({axis.name, type, axis.values, axis.log_spaced});
        layout.grid_dims.push_back(axis.name);
    }
    ScaleLayout seed_scale = counting_scale("seed", spec.seeds);
    seed_scale.type = ElementType::int64;
    grid_scales.push_back(seed_scale);
    layout.grid_dims.push_back("seed");

    std::vector<ScaleLayout> other_scales = {
        counting_scale("class", classes),        counting_scale("component", dim),
        counting_scale("component_out", dim),    counting_scale("component_in", dim),
        counting_scale("sample", samples),       counting_scale("head_unit", head_max),
        counting_scale("input", inputs)};
    ScaleLayout step_scale{"step", ElementType::int64, {}, false};
    for (std::int64_t step : layout.steps) step_scale.values.push_back(static_cast<double>(step));
    other_scales.push_back(step_scale);
    auto length_of = [&](const std::string& name) -> std::int64_t {
        for (const ScaleLayout& scale : grid_scales)
            if (scale.name == name) return scale.length();
        for (const ScaleLayout& scale : other_scales)
            if (scale.name == name) return scale.length();
        return 0;
    };

    auto add = [&](const std::string& group, const std::string& name, ElementType type, bool gridded,
                   const std::vector<std::string>& tail) {
        DatasetLayout dataset;
        dataset.group = group;
        dataset.name = name;
        dataset.type = type;
        dataset.gridded = gridded;
        dataset.dims = gridded ? layout.grid_dims : std::vector<std::string>{"seed"};
        dataset.dims.insert(dataset.dims.end(), tail.begin(), tail.end());
        for (const std::string& dim_name : dataset.dims) dataset.shape.push_back(length_of(dim_name));
        for (const std::string& dim_name : tail) dataset.per_item *= length_of(dim_name);
        const std::size_t item_rank = gridded ? layout.grid_dims.size() : 1;
        dataset.chunk = contiguous_chunk(dataset.shape, item_rank, chunk_target_elements,
                                         gridded ? max_trajectories_per_chunk : max_seeds_per_chunk);
        layout.datasets.push_back(dataset);
    };

    using enum ElementType;
    for (const char* name : {"status"}) add("results", name, int8, true, {});
    const std::pair<const char*, ElementType> results[] = {
        {"collapse_step", int64},          {"collapse_time", float64},
        {"final_step", int64},             {"peak_accuracy", float64},
        {"peak_accuracy_step", int64},     {"final_accuracy", float64},
        {"final_loss", float64},           {"final_label_distance", float64},
        {"final_projected_distance", float64}, {"slow_rate", float64},
        {"initial_label_distance", float64},   {"reference_distance", float64},
        // Theory diagnostics (docs/model.md), beyond SPEC §6.
        {"theory_slow_rate", float64},         {"critical_lr", float64},
        {"selfconsistency_residual", float64}, {"slow_rate_first_step", int64},
        {"slow_rate_last_step", int64},        {"theory_window_rate", float64}};
    for (const auto& [name, type] : results) add("results", name, type, true, {});
    for (const char* name : {"label_distance", "projected_distance", "accuracy", "loss"})
        add("traces", name, real, true, {"step"});
    // The exact solution is computed in double and kept so: it goes far below a float32 run's floor.
    add("traces", "theory_label_distance", float64, true, {"step"});
    describe_fit_window(layout);
    add("final", "label_embeddings", real, true, {"class", "component"});
    add("final", "head", real, true, {"component_out", "component_in"});
    if (spec.output.save_samples) add("final", "sample_embeddings", real, true, {"sample", "component"});
    if (spec.output.save_initial) {
        // A zero-width dimension cannot be chunked, and without a head
        // there is nothing to store, so head_A/head_B exist only when h_max > 0.
        if (head_max > 0) {
            add("initial", "head_A", real, true, {"head_unit", "component"});
            add("initial", "head_B", real, true, {"component", "head_unit"});
        }
        add("initial", "label_embeddings", real, false, {"class", "component"});
        if (!teacher) add("initial", "sample_embeddings", real, false, {"sample", "component"});
        if (teacher && inputs > 0) {
            add("initial", "encoder", real, false, {"component", "input"});
            add("initial", "inputs", real, false, {"sample", "input"});
            add("initial", "teacher", real, false, {"class", "input"});
        }
        for (const char* name : {"primary_label", "second_label", "frustration_order"})
            add("graph", name, int32, false, {"sample"});
    }

    // Each group gets its own copy of every scale its datasets use: netCDF
    // (and so xarray) only sees dimensions of the same group or an ancestor.
    for (const DatasetLayout& dataset : layout.datasets) {
        auto group = std::find_if(layout.groups.begin(), layout.groups.end(),
                                  [&](const GroupLayout& g) { return g.name == dataset.group; });
        if (group == layout.groups.end()) group = layout.groups.insert(layout.groups.end(), {dataset.group, {}});
        for (const std::string& dim_name : dataset.dims) {
            if (std::any_of(group->scales.begin(), group->scales.end(),
                            [&](const ScaleLayout& s) { return s.name == dim_name; }))
                continue;
            for (const auto* pool : {&grid_scales, &other_scales})
                for (const ScaleLayout& scale : *pool)
                    if (scale.name == dim_name) group->scales.push_back(scale);
        }
    }
    return layout;
}

} // namespace collapse::storage::detail
