// ResultWriter::write_batch and write_seed_data: scattered trajectories are
// written with one H5Dwrite per dataset per batch, through a union of
// rectangular boxes built from the batch's runs of consecutive flat indices,
// into chunks staged in memory (staged_chunks.hpp); the write window then
// stores the finished chunks.
#include <algorithm>
#include <limits>
#include <numeric>
#include <type_traits>

#include "collapse/storage/flat_boxes.hpp"
#include "staged_chunks.hpp"
#include "writer_state.hpp"

namespace collapse::storage {

using namespace detail;

namespace {

void write_selection(hid_t dataset, const DatasetLayout& layout, hid_t file_space, hid_t memory_type,
                     const void* buffer, std::size_t elements) {
    const hsize_t length = elements;
    Handle memory_space = checked(H5Screate_simple(1, &length, nullptr), H5Sclose, "cannot make a dataspace");
    check(H5Dwrite(dataset, memory_type, memory_space.get(), file_space, H5P_DEFAULT, buffer),
          "cannot write " + layout.path());
}

// Items' values in the order of `order`, converted to the file's element type.
template <class Target, class Source>
std::vector<Target> gathered(const std::vector<Source>& source, const std::vector<std::size_t>& order,
                             std::int64_t per_item) {
    const auto width = static_cast<std::size_t>(per_item);
    std::vector<Target> buffer(order.size() * width);
    for (std::size_t k = 0; k < order.size(); ++k)
        for (std::size_t e = 0; e < width; ++e) buffer[k * width + e] = static_cast<Target>(source[order[k] * width + e]);
    return buffer;
}

template <class Source>
void write_gathered(hid_t dataset, const DatasetLayout& layout, hid_t file_space, const std::vector<Source>& source,
                    const std::vector<std::size_t>& order) {
    const std::size_t elements = order.size() * static_cast<std::size_t>(layout.per_item);
    switch (layout.type) {
    case ElementType::float32: {
        const auto buffer = gathered<float>(source, order, layout.per_item);
        write_selection(dataset, layout, file_space, H5T_NATIVE_FLOAT, buffer.data(), elements);
        break;
    }
    case ElementType::float64: {
        const auto buffer = gathered<double>(source, order, layout.per_item);
        write_selection(dataset, layout, file_space, H5T_NATIVE_DOUBLE, buffer.data(), elements);
        break;
    }
    case ElementType::int8: {
        const auto buffer = gathered<std::int8_t>(source, order, layout.per_item);
        write_selection(dataset, layout, file_space, H5T_NATIVE_INT8, buffer.data(), elements);
        break;
    }
    case ElementType::int32: {
        const auto buffer = gathered<std::int32_t>(source, order, layout.per_item);
        write_selection(dataset, layout, file_space, H5T_NATIVE_INT32, buffer.data(), elements);
        break;
    }
    case ElementType::int64: {
        const auto buffer = gathered<std::int64_t>(source, order, layout.per_item);
        write_selection(dataset, layout, file_space, H5T_NATIVE_INT64, buffer.data(), elements);
        break;
    }
    }
}

const std::vector<double>* batch_array(const BatchOutput& batch, const std::string& path) {
    if (path == "/traces/label_distance") return &batch.label_distance_trace;
    if (path == "/traces/projected_distance") return &batch.projected_distance_trace;
    if (path == "/traces/accuracy") return &batch.accuracy_trace;
    if (path == "/traces/loss") return &batch.loss_trace;
    if (path == "/traces/theory_label_distance") return &batch.theory_label_distance_trace;
    if (path == "/final/label_embeddings") return &batch.final_label_embeddings;
    if (path == "/final/head") return &batch.final_head;
    if (path == "/final/sample_embeddings") return &batch.final_sample_embeddings;
    if (path == "/initial/head_A") return &batch.initial_head_A;
    if (path == "/initial/head_B") return &batch.initial_head_B;
    return nullptr;
}

// /results/<name> of every trajectory, in batch order; integers stay exact.
std::vector<double> summary_reals(const BatchOutput& batch, const std::string& name) {
    std::vector<double> values;
    if (name == "theory_slow_rate" || name == "critical_lr" || name == "selfconsistency_residual" ||
        name == "theory_window_rate") {
        // A batch built without theory (empty vector) stores NaN, the fill value.
        values.assign(batch.size(), std::numeric_limits<double>::quiet_NaN());
        for (std::size_t b = 0; b < batch.theory.size(); ++b) {
            const TheoryDiagnostics& t = batch.theory[b];
            values[b] = name == "theory_slow_rate"     ? t.theory_slow_rate
                        : name == "critical_lr"        ? t.critical_lr
                        : name == "theory_window_rate" ? t.theory_window_rate
                                                       : t.selfconsistency_residual;
        }
        return values;
    }
    for (const TrajectorySummary& s : batch.summary) {
        if (name == "collapse_time") values.push_back(s.collapse_time);
        else if (name == "peak_accuracy") values.push_back(s.peak_accuracy);
        else if (name == "final_accuracy") values.push_back(s.final_accuracy);
        else if (name == "final_loss") values.push_back(s.final_loss);
        else if (name == "final_label_distance") values.push_back(s.final_label_distance);
        else if (name == "final_projected_distance") values.push_back(s.final_projected_distance);
        else if (name == "slow_rate") values.push_back(s.slow_rate);
        else if (name == "initial_label_distance") values.push_back(s.initial_label_distance);
        else if (name == "reference_distance") values.push_back(s.reference_distance);
        else throw StorageError("no summary field for /results/" + name);
    }
    return values;
}

std::vector<std::int64_t> summary_integers(const BatchOutput& batch, const std::string& name) {
    std::vector<std::int64_t> values;
    for (const TrajectorySummary& s : batch.summary) {
        if (name == "status") values.push_back(static_cast<std::int64_t>(s.status));
        else if (name == "collapse_step") values.push_back(s.collapse_step);
        else if (name == "final_step") values.push_back(s.final_step);
        else if (name == "peak_accuracy_step") values.push_back(s.peak_accuracy_step);
        else if (name == "slow_rate_first_step") values.push_back(s.slow_rate_first_step);
        else if (name == "slow_rate_last_step") values.push_back(s.slow_rate_last_step);
        else throw StorageError("no summary field for /results/" + name);
    }
    return values;
}

void require_size(const std::string& what, std::size_t actual, std::size_t expected) {
    if (actual != expected)
        throw StorageError("batch " + what + " holds " + std::to_string(actual) + " values, expected " +
                           std::to_string(expected));
}

} // namespace

void ResultWriter::write_batch(const BatchOutput& batch) {
    if (!state_ || state_->closed) throw StorageError("write_batch on a closed ResultWriter");
    const std::lock_guard lock(state_->mutex);
    QuietErrors quiet;
    rethrow_flush_error(*state_);
    if (state_->failed) write_in_window(*state_, [] {}); // refuses, saying what is safe
    flush_seed_data(*state_);
    const State& state = *state_;
    const std::size_t count = batch.size();
    if (count == 0) return;
    require_size("summary", batch.summary.size(), count);
    if (!batch.theory.empty()) require_size("theory", batch.theory.size(), count);
    if (batch.trace_length != static_cast<int>(state.layout.steps.size()))
        throw StorageError("batch trace_length " + std::to_string(batch.trace_length) + " != " +
                           std::to_string(state.layout.steps.size()) + " record steps");

    std::vector<std::size_t> order(count);
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return batch.flat_index[a] < batch.flat_index[b];
    });
    std::vector<std::int64_t> sorted(count);
    for (std::size_t k = 0; k < count; ++k) sorted[k] = batch.flat_index[order[k]];
    if (sorted.front() < state.shard.begin || sorted.back() >= state.shard.end)
        throw StorageError("batch holds flat indices outside this file's range [" + std::to_string(state.shard.begin) +
                           ", " + std::to_string(state.shard.end) + ")");
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
        throw StorageError("batch holds a flat index twice");
    std::vector<GridBox> boxes;
    for (const auto& [begin, end] : consecutive_runs(sorted))
        for (GridBox& box : flat_range_boxes(state.layout.grid_shape, begin, end)) boxes.push_back(std::move(box));

    // A batch without the theory trace (not analysed: empty) stores NaN, the fill value, like `theory`.
    const std::vector<double> no_theory_trace(batch.theory_label_distance_trace.empty()
                                                  ? count * static_cast<std::size_t>(batch.trace_length)
                                                  : 0,
                                              std::numeric_limits<double>::quiet_NaN());
    const auto array_of = [&](const std::string& path) {
        const std::vector<double>* array = batch_array(batch, path);
        return array->empty() && array == &batch.theory_label_distance_trace ? &no_theory_trace : array;
    };
    // Validate everything before the first write, so a bad batch writes nothing.
    for (const DatasetLayout& layout : state.layout.datasets)
        if (layout.gridded && layout.group != "results")
            require_size(layout.path(), array_of(layout.path())->size(), count * static_cast<std::size_t>(layout.per_item));

    const std::int64_t finished = std::count_if(batch.summary.begin(), batch.summary.end(),
                                                [](const TrajectorySummary& s) { return static_cast<int>(s.status) >= 0; });
    std::vector<const DatasetLayout*> layouts;
    for (const DatasetLayout& layout : state.layout.datasets)
        if (layout.gridded) layouts.push_back(&layout);
    const auto write_values = [&](hid_t dataset, const DatasetLayout& layout, hid_t selection) {
        if (layout.group != "results") write_gathered(dataset, layout, selection, *array_of(layout.path()), order);
        else if (layout.type == ElementType::int64 || layout.type == ElementType::int8)
            write_gathered(dataset, layout, selection, summary_integers(batch, layout.name), order);
        else write_gathered(dataset, layout, selection, summary_reals(batch, layout.name), order);
    };
    // Compression happens here, outside the window, with the file closed;
    // the window that stores the chunks opens now or, when windows are
    // coalesced, at most coalesce_seconds after the last one.
    add_pending(*state_, stage_chunks(state.path, layouts, boxes, write_values, state.pending), finished);
    store_if_due(*state_);
}

namespace detail {

// Writes the seeds collected by write_seed_data, as write_batch writes a
// batch: chunks staged outside the window, stored inside it.
void flush_seed_data(ResultWriter::State& state) {
    if (state.pending_seeds.empty()) return;
    std::vector<SeedData> seeds = std::move(state.pending_seeds);
    state.pending_seeds.clear();
    std::vector<std::size_t> order(seeds.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(),
              [&](std::size_t a, std::size_t b) { return seeds[a].seed_index < seeds[b].seed_index; });
    std::vector<std::int64_t> sorted;
    for (std::size_t k : order) sorted.push_back(seeds[k].seed_index);
    std::vector<GridBox> boxes;
    for (const auto& [begin, end] : consecutive_runs(sorted))
        for (GridBox& box : flat_range_boxes({state.spec.seeds}, begin, end)) boxes.push_back(std::move(box));
    std::vector<const DatasetLayout*> layouts;
    for (const DatasetLayout& layout : state.layout.datasets)
        if (!layout.gridded) layouts.push_back(&layout);
    const auto write_values = [&](hid_t dataset, const DatasetLayout& layout, hid_t selection) {
        const auto write = [&](auto member) {
            std::remove_cvref_t<decltype(seeds.front().*member)> all;
            for (const SeedData& seed : seeds) all.insert(all.end(), (seed.*member).begin(), (seed.*member).end());
            write_gathered(dataset, layout, selection, all, order);
        };
        const std::string path = layout.path();
        if (path == "/initial/label_embeddings") write(&SeedData::initial_label_embeddings);
        else if (path == "/initial/sample_embeddings") write(&SeedData::initial_sample_embeddings);
        else if (path == "/initial/encoder") write(&SeedData::encoder);
        else if (path == "/initial/inputs") write(&SeedData::inputs);
        else if (path == "/initial/teacher") write(&SeedData::teacher);
        else if (path == "/graph/primary_label") write(&SeedData::primary_label);
        else if (path == "/graph/second_label") write(&SeedData::second_label);
        else if (path == "/graph/frustration_order") write(&SeedData::frustration_order);
        else throw StorageError("no seed data for " + path);
    };
    add_pending(state, stage_chunks(state.path, layouts, boxes, write_values, state.pending), 0);
    store_if_due(state);
}

} // namespace detail

void ResultWriter::write_seed_data(const SeedData& seed) {
    if (!state_ || state_->closed) throw StorageError("write_seed_data on a closed ResultWriter");
    State& state = *state_;
    if (!state.spec.output.save_initial) throw StorageError("write_seed_data without output.save_initial");
    if (seed.seed_index < 0 || seed.seed_index >= state.spec.seeds)
        throw StorageError("seed index " + std::to_string(seed.seed_index) + " outside [0, " +
                           std::to_string(state.spec.seeds) + ")");
    for (const DatasetLayout& layout : state.layout.datasets) {
        if (layout.gridded) continue;
        const std::string path = layout.path();
        const std::size_t size = path == "/initial/label_embeddings"    ? seed.initial_label_embeddings.size()
                                 : path == "/initial/sample_embeddings" ? seed.initial_sample_embeddings.size()
                                 : path == "/initial/encoder"           ? seed.encoder.size()
                                 : path == "/initial/inputs"            ? seed.inputs.size()
                                 : path == "/initial/teacher"           ? seed.teacher.size()
                                 : path == "/graph/primary_label"       ? seed.primary_label.size()
                                 : path == "/graph/second_label"        ? seed.second_label.size()
                                 : path == "/graph/frustration_order"   ? seed.frustration_order.size()
                                                                        : 0;
        require_size("seed " + path, size, static_cast<std::size_t>(layout.per_item));
    }
    const std::lock_guard lock(state.mutex);
    QuietErrors quiet;
    rethrow_flush_error(state);
    // Seeds are collected and written a chunk's worth at a time (per-seed
    // datasets hold at most 16 seeds per chunk), and after the last seed.
    state.pending_seeds.push_back(seed);
    if (state.pending_seeds.size() >= 16 || seed.seed_index == state.spec.seeds - 1) flush_seed_data(state);
}

} // namespace collapse::storage
