// h = 0 stop-gradient twins computed once (twin_sharing.hpp): the twin index
// against a brute-force search over Grid::params, the batch cutter's
// coverage, and the sharing backend's counts and copies.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "collapse/scheduler/parallel_sweep.hpp"
#include "collapse/scheduler/twin_sharing.hpp"
#include "scripted_backend.hpp"

namespace collapse {
namespace {

SweepSpec twin_spec(std::vector<double> heads, bool stop_gradient_first, std::int64_t seeds = 3) {
    SweepSpec spec = testing::tiny_spec(seeds, {testing::frustration_axis({0.0, 0.5}),
                                                testing::head_dim_axis(std::move(heads)), testing::lr_axis({0.1, 0.2})});
    const Axis stop_gradient = testing::stop_gradient_axis();
    if (stop_gradient_first) spec.axes.insert(spec.axes.begin(), stop_gradient);
    else spec.axes.push_back(stop_gradient);
    return spec;
}

// The reference: the flat index whose parameters differ only in stop_gradient, at h = 0.
std::int64_t brute_force_twin(const Grid& grid, std::int64_t flat) {
    const TrajectoryParams p = grid.params(flat);
    if (p.head_dim != 0) return -1;
    for (std::int64_t other = 0; other < grid.size(); ++other) {
        const TrajectoryParams q = grid.params(other);
        if (other != flat && q.frustration == p.frustration && q.head_dim == 0 && q.lr == p.lr &&
            q.init_scale == p.init_scale && q.seed_index == p.seed_index && q.stop_gradient != p.stop_gradient)
            return other;
    }
    return -1;
}

TEST(TwinIndex, AgreesWithABruteForceSearch) {
    for (bool first : {false, true})
        for (const std::vector<double>& heads : {std::vector<double>{0, 2}, {3, 0, 5}, {0}, {2}}) {
            const SweepSpec spec = twin_spec(heads, first);
            const Grid grid(spec);
            const TwinIndex twins(spec);
            EXPECT_EQ(twins.enabled(), std::find(heads.begin(), heads.end(), 0.0) != heads.end());
            for (std::int64_t flat = 0; flat < grid.size(); ++flat)
                EXPECT_EQ(twins.twin(flat), brute_force_twin(grid, flat)) << flat;
        }
}

TEST(TwinIndex, DisabledWithoutAStopGradientAxis) {
    const SweepSpec spec = testing::tiny_spec(4);
    EXPECT_FALSE(TwinIndex(spec).enabled());
    EXPECT_EQ(TwinIndex(spec).twin(0), -1);
}

// Every pending index comes out exactly once, twins in the same batch, and
// no batch computes more than `count`.
void check_cutter(const SweepSpec& spec, const PendingSet& pending, std::int64_t count) {
    const TwinIndex twins(spec);
    BatchCutter cutter(pending, twins);
    std::map<std::int64_t, int> batch_of;
    std::vector<std::int64_t> batch;
    for (int b = 0;; ++b) {
        cutter.next(count, batch);
        if (batch.empty()) break;
        std::int64_t computed = 0;
        for (std::int64_t flat : batch) {
            EXPECT_TRUE(batch_of.emplace(flat, b).second) << "index " << flat << " twice";
            const std::int64_t twin = twins.twin(flat);
            if (twin < 0 || std::find(batch.begin(), batch.end(), twin) == batch.end() || flat < twin) ++computed;
        }
        EXPECT_LE(computed, count);
    }
    const std::vector<std::int64_t> all = pending.indices();
    EXPECT_EQ(batch_of.size(), all.size());
    for (std::int64_t flat : all) {
        ASSERT_TRUE(batch_of.count(flat)) << flat;
        const std::int64_t twin = twins.twin(flat);
        if (twin >= 0 && pending.contains(twin)) {
            EXPECT_EQ(batch_of[flat], batch_of[twin]) << flat << " and " << twin;
        }
    }
}

TEST(BatchCutter, CoversEveryIndexOnceWithTwinsTogether) {
    for (bool first : {false, true}) {
        const SweepSpec spec = twin_spec({0, 2}, first);
        const Grid grid(spec);
        for (std::int64_t count : {1, 5, 7, 64}) {
            check_cutter(spec, PendingSet({FlatRange{0, grid.size()}}), count);
            // A shard, and a resumed set with gaps: twins outside stay out.
            check_cutter(spec, PendingSet({FlatRange{5, grid.size() / 2 + 3}}), count);
            check_cutter(spec, PendingSet({FlatRange{0, 7}, FlatRange{20, 31}, FlatRange{40, grid.size()}}), count);
        }
    }
}

TEST(PendingSet, ContainsMatchesTheIndexList) {
    const PendingSet pending({FlatRange{3, 7}, FlatRange{10, 11}, FlatRange{20, 25}});
    const std::vector<std::int64_t> all = pending.indices();
    for (std::int64_t flat = -2; flat < 30; ++flat)
        EXPECT_EQ(pending.contains(flat), std::find(all.begin(), all.end(), flat) != all.end()) << flat;
}

// Records what it computed and stamps each trajectory with its flat index.
class StampingBackend : public testing::ScriptedBackend {
public:
    StampingBackend() : ScriptedBackend(TrajectoryStatus::stable) {}
    void run_batch(const SweepSpec& spec, const Grid& grid, std::span<const std::int64_t> flat, BatchOutput& out) override {
        ScriptedBackend::run_batch(spec, grid, flat, out);
        out.trace_length = 2;
        out.loss_trace.assign(2 * flat.size(), 0.0);
        out.theory.assign(flat.size(), TheoryDiagnostics{});
        for (std::size_t b = 0; b < flat.size(); ++b) {
            out.summary[b].final_step = flat[b];
            out.loss_trace[2 * b + 1] = static_cast<double>(flat[b]);
            computed.insert(flat[b]);
        }
    }
    std::multiset<std::int64_t> computed;
};

TEST(TwinSharingBackend, ComputesHalfOfAPlainGridAndCopiesToBothTwins) {
    const SweepSpec spec = twin_spec({0}, true);
    const Grid grid(spec);
    auto owned = std::make_unique<StampingBackend>();
    StampingBackend* inner = owned.get();
    TwinSharingBackend sharing(std::move(owned));
    std::atomic<bool> stop{false};
    std::map<std::int64_t, std::int64_t> written; // flat -> the flat index that was computed for it
    const SweepReport report = run_sweep(
        spec, grid, sharing, PendingSet({FlatRange{0, grid.size()}}), 4,
        [&](const BatchOutput& batch) {
            for (std::size_t b = 0; b < batch.size(); ++b) {
                EXPECT_TRUE(written.emplace(batch.flat_index[b], batch.summary[b].final_step).second);
                EXPECT_EQ(batch.loss_trace[2 * b + 1], static_cast<double>(batch.summary[b].final_step));
            }
        },
        nullptr, stop);
    EXPECT_EQ(report.progress.trajectories_done, grid.size());
    EXPECT_EQ(sharing.trajectories_requested(), grid.size());
    EXPECT_EQ(sharing.trajectories_computed(), grid.size() / 2);
    EXPECT_EQ(static_cast<std::int64_t>(inner->computed.size()), grid.size() / 2);
    ASSERT_EQ(static_cast<std::int64_t>(written.size()), grid.size());
    const TwinIndex twins(spec);
    for (const auto& [flat, source] : written) EXPECT_TRUE(source == flat || source == twins.twin(flat)) << flat;
}

TEST(TwinSharingBackend, ExplicitPointListsShareToo) {
    // Refinement probes: a from_points grid, twins anywhere in the batch.
    const SweepSpec spec = twin_spec({0, 2}, false);
    std::vector<TrajectoryParams> points;
    for (int h : {0, 2})
        for (bool sg : {false, true}) points.push_back(TrajectoryParams{0.25, h, 0.1, sg, 1.0, 1});
    const Grid grid = Grid::from_points(spec, points);
    TwinSharingBackend sharing(std::make_unique<StampingBackend>());
    BatchOutput out;
    const std::vector<std::int64_t> indices{3, 0, 1, 2};
    sharing.run_batch(spec, grid, indices, out);
    EXPECT_EQ(sharing.trajectories_computed(), 3);
    ASSERT_EQ(out.size(), 4u);
    EXPECT_EQ(out.flat_index, indices);
    EXPECT_EQ(out.summary[1].final_step, 0); // point 0 computed
    EXPECT_EQ(out.summary[2].final_step, 0); // point 1 (h = 0, sg) is its copy
    EXPECT_EQ(out.summary[0].final_step, 3);
    EXPECT_EQ(out.loss_trace[2 * 2 + 1], 0.0);
}

} // namespace
} // namespace collapse
