#include "collapse/scheduler/twin_sharing.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <unordered_map>

namespace collapse {
namespace {

std::uint64_t bits(double value) {
    std::uint64_t out;
    std::memcpy(&out, &value, sizeof out);
    return out;
}

// Parameters up to what cannot change the trajectory: stop_gradient at h = 0.
struct TrajectoryKey {
    std::uint64_t frustration, lr, init_scale;
    std::int64_t seed_index;
    int head_dim;
    bool stop_gradient;
    bool operator==(const TrajectoryKey&) const = default;
};

struct TrajectoryKeyHash {
    std::size_t operator()(const TrajectoryKey& k) const {
        std::uint64_t h = k.frustration * 0x9E3779B97F4A7C15ull;
        for (std::uint64_t v : {k.lr, k.init_scale, static_cast<std::uint64_t>(k.seed_index),
                                static_cast<std::uint64_t>(k.head_dim), static_cast<std::uint64_t>(k.stop_gradient)})
            h = (h ^ v) * 0x100000001B3ull + (h >> 29);
        return static_cast<std::size_t>(h);
    }
};

TrajectoryKey key_of(TrajectoryParams params) {
    if (params.head_dim == 0) params.stop_gradient = false;
    return {bits(params.frustration), bits(params.lr), bits(params.init_scale), params.seed_index, params.head_dim,
            params.stop_gradient};
}

template <class T>
void expand(const std::vector<T>& unique, std::size_t unique_count, const std::vector<std::size_t>& source,
            std::vector<T>& out) {
    if (unique.empty() || unique_count == 0) {
        out.clear();
        return;
    }
    const std::size_t per = unique.size() / unique_count;
    out.resize(per * source.size());
    for (std::size_t b = 0; b < source.size(); ++b)
        std::copy_n(unique.begin() + static_cast<std::ptrdiff_t>(source[b] * per), per,
                    out.begin() + static_cast<std::ptrdiff_t>(b * per));
}

} // namespace

TwinIndex::TwinIndex(const SweepSpec& spec) {
    std::vector<std::int64_t> strides(spec.axes.size());
    std::int64_t stride = spec.seeds;
    for (std::size_t a = spec.axes.size(); a-- > 0;) {
        strides[a] = stride;
        stride *= static_cast<std::int64_t>(spec.axes[a].values.size());
    }
    bool head_axis = false;
    for (std::size_t a = 0; a < spec.axes.size(); ++a) {
        const Axis& axis = spec.axes[a];
        if (axis.name == "stop_gradient" && axis.values.size() == 2) stop_gradient_stride_ = strides[a];
        if (axis.name == "head_dim") {
            head_axis = true;
            head_stride_ = strides[a];
            head_values_ = axis.values;
        }
    }
    const bool some_plain = head_axis ? std::find(head_values_.begin(), head_values_.end(), 0.0) != head_values_.end()
                                      : spec.defaults.head_dim == 0;
    if (!some_plain) stop_gradient_stride_ = 0;
}

std::int64_t TwinIndex::twin(std::int64_t flat) const {
    if (stop_gradient_stride_ == 0) return -1;
    if (!head_values_.empty()) {
        const auto head = static_cast<std::size_t>((flat / head_stride_) % static_cast<std::int64_t>(head_values_.size()));
        if (head_values_[head] != 0.0) return -1;
    }
    const bool first_value = (flat / stop_gradient_stride_) % 2 == 0;
    return first_value ? flat + stop_gradient_stride_ : flat - stop_gradient_stride_;
}

void BatchCutter::next(std::int64_t count, std::vector<std::int64_t>& out) {
    out.clear();
    if (!twins_.enabled() || !pending_->sorted()) {
        pending_->take(position_, count, out);
        return;
    }
    std::int64_t to_compute = 0;
    while (to_compute < count) {
        pending_->take(position_, count - to_compute, taken_);
        if (taken_.empty()) break;
        for (const std::int64_t flat : taken_) {
            if (pulled_forward_.erase(flat) > 0) continue; // went with its twin in an earlier batch
            out.push_back(flat);
            ++to_compute;
            const std::int64_t twin = twins_.twin(flat);
            if (twin > flat && pending_->contains(twin)) {
                out.push_back(twin);
                pulled_forward_.insert(twin);
            }
        }
    }
}

void TwinSharingBackend::run_batch(const SweepSpec& spec, const Grid& grid, std::span<const std::int64_t> flat_indices,
                                   BatchOutput& out) {
    const std::size_t count = flat_indices.size();
    requested_ += static_cast<std::int64_t>(count);
    std::unordered_map<TrajectoryKey, std::size_t, TrajectoryKeyHash> slot_of;
    std::vector<std::size_t> source(count);
    std::vector<std::int64_t> unique;
    for (std::size_t b = 0; b < count; ++b) {
        const auto [found, added] = slot_of.emplace(key_of(grid.params(flat_indices[b])), unique.size());
        if (added) unique.push_back(flat_indices[b]);
        source[b] = found->second;
    }
    computed_ += static_cast<std::int64_t>(unique.size());
    if (unique.size() == count) {
        inner_->run_batch(spec, grid, flat_indices, out);
        return;
    }
    BatchOutput& u = unique_out_;
    inner_->run_batch(spec, grid, unique, u);
    const std::size_t n = unique.size();
    out.flat_index.assign(flat_indices.begin(), flat_indices.end());
    out.trace_length = u.trace_length;
    expand(u.summary, n, source, out.summary);
    expand(u.theory, n, source, out.theory);
    for (auto member : {&BatchOutput::label_distance_trace, &BatchOutput::projected_distance_trace,
                        &BatchOutput::accuracy_trace, &BatchOutput::loss_trace, &BatchOutput::final_label_embeddings,
                        &BatchOutput::final_head, &BatchOutput::final_sample_embeddings, &BatchOutput::initial_head_A,
                        &BatchOutput::initial_head_B})
        expand(u.*member, n, source, out.*member);
}

bool twin_sharing_enabled() {
    const char* value = std::getenv("COLLAPSE_SHARE_TWINS");
    if (value == nullptr || std::strcmp(value, "1") == 0) return true;
    if (std::strcmp(value, "0") == 0) return false;
    throw std::invalid_argument(std::string("COLLAPSE_SHARE_TWINS='") + value + "': expected 1 (default) or 0");
}

} // namespace collapse
