#include "layout.hpp"

#include <algorithm>

#include "collapse/record_steps.hpp"

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
        DatasetLayout dataset{group, name, type, {}, {}, {}, gridded, 1};
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
        {"selfconsistency_residual", float64}};
    for (const auto& [name, type] : results) add("results", name, type, true, {});
    for (const char* name : {"label_distance", "projected_distance", "accuracy", "loss"})
        add("traces", name, real, true, {"step"});
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
