// The memory a run is checked against before it starts (memory_budget.hpp),
// and errors in OpenMP workers (parallel_errors.hpp): issue 14 items 2 and 8.
#include <gtest/gtest.h>

#include <omp.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include <new>
#include <stdexcept>

#include "collapse/backend/backend.hpp"
#include "collapse/backend/memory_budget.hpp"
#include "collapse/backend/parallel_errors.hpp"
#include "collapse/integrators/gradient_descent.hpp"
#include "collapse/integrators/runge_kutta4.hpp"
#include "collapse/model/layout.hpp"
#include "collapse/model/setup.hpp"
#include "collapse/record_steps.hpp"
#include "collapse/sweep/grid.hpp"
#include "spec_builder.hpp"

namespace collapse {
namespace {

template <class T>
std::uint64_t bytes_of(const std::vector<T>& v) {
    return v.size() * sizeof(T);
}

SweepSpec spec_of(ModelKind kind, Precision precision, IntegratorMethod method, int head_dim) {
    SweepSpec spec = testing::test_spec(
        {.classes = 5, .samples_per_class = 7, .dim = 6, .method = method, .max_steps = 300, .precision = precision,
         .record_points = 50, .save_samples = true, .save_initial = true,
         .axes = {testing::frustration_axis({0.2}), testing::head_dim_axis({double(head_dim)}), testing::lr_axis({0.1})}});
    spec.shape.kind = kind;
    spec.shape.input_dim = kind == ModelKind::teacher_student ? 9 : 0;
    return spec;
}

// The estimate against what the CPU backend really allocates for one
// trajectory: the seed's draws, the setup, and the buffers it sizes with the
// layouts, counted from the objects themselves.
template <class Real, class Integrator>
void expect_estimate_matches_allocations(const SweepSpec& spec) {
    const Grid grid(spec);
    const TrajectoryParams params = grid.params(0);
    const SeedDraws draws = draw_seed(spec.shape, spec.max_head_dim(), spec.master_seed, params.seed_index);
    const TrajectorySetup<Real> setup = make_trajectory<Real>(spec.shape, params, draws);
    const std::uint64_t draw_bytes = bytes_of(draws.sample_normals) + bytes_of(draws.label_normals) +
                                     bytes_of(draws.head_A_normals) + bytes_of(draws.head_B_normals) +
                                     bytes_of(draws.encoder_normals) + bytes_of(draws.inputs) +
                                     bytes_of(draws.teacher) + bytes_of(draws.primary_label) +
                                     bytes_of(draws.second_label) + bytes_of(draws.frustration_order);
    const std::uint64_t setup_bytes = bytes_of(setup.primary_label) + bytes_of(setup.second_label) +
                                      bytes_of(setup.label_degree) + bytes_of(setup.inputs) +
                                      bytes_of(setup.initial_state);
    const StateLayout state(setup.dims);
    const TrajectoryMemory memory = host_trajectory_memory(spec);
    EXPECT_EQ(memory.setup, draw_bytes + setup_bytes);
    EXPECT_EQ(memory.state, state.size * sizeof(Real));
    EXPECT_EQ(memory.gradient, state.size * sizeof(Real));
    EXPECT_EQ(memory.workspace,
              (WorkspaceLayout(setup.dims).size + Integrator::scratch_vectors * state.size) * sizeof(Real));

    // The output slot: prepare_batch_output's arrays for one trajectory.
    const auto backend = make_cpu_backend(1);
    BatchOutput out;
    const std::int64_t flat[] = {0};
    backend->run_batch(spec, grid, flat, out);
    const std::uint64_t output_reals = bytes_of(out.label_distance_trace) + bytes_of(out.projected_distance_trace) +
                                       bytes_of(out.accuracy_trace) + bytes_of(out.loss_trace) +
                                       bytes_of(out.final_label_embeddings) + bytes_of(out.final_head) +
                                       bytes_of(out.final_sample_embeddings) + bytes_of(out.initial_head_A) +
                                       bytes_of(out.initial_head_B);
    // The estimate counts min(record_points, max_steps + 1) trace points, an
    // upper bound on record_steps, which drops rounded duplicates (39 here).
    const std::uint64_t points = record_steps(spec.integrator.max_steps, spec.output.record_points).size();
    ASSERT_EQ(static_cast<std::uint64_t>(out.trace_length), points);
    EXPECT_EQ(memory.output, output_reals + 256 + 4 * sizeof(double) * (50 - points));
}

TEST(MemoryBudget, EstimateIsWhatTheCpuBackendAllocates) {
    for (int head : {0, 4}) {
        SCOPED_TRACE(head);
        expect_estimate_matches_allocations<double, GradientDescent>(
            spec_of(ModelKind::embedding, Precision::float64, IntegratorMethod::gd, head));
        expect_estimate_matches_allocations<float, RungeKutta4>(
            spec_of(ModelKind::embedding, Precision::float32, IntegratorMethod::rk4, head));
        expect_estimate_matches_allocations<double, RungeKutta4>(
            spec_of(ModelKind::teacher_student, Precision::float64, IntegratorMethod::rk4, head));
    }
}

// classes = 1000, samples_per_class = 100000, dim = 64: the 25.6 GB
// state that passed validation and then aborted.
TEST(MemoryBudget, RefusesAStateLargerThanMemoryNamingNumbersAndKeys) {
    const SweepSpec spec = testing::test_spec({.classes = 1000, .samples_per_class = 100000, .dim = 64});
    const TrajectoryMemory memory = host_trajectory_memory(spec);
    EXPECT_EQ(memory.state, (1000ull * 100000 * 64 + 1000 * 64) * 8);
    const HostMemory host{24ull << 30, "test"};
    const auto messages = memory_shortfalls(spec, {cpu_memory_budget(spec, 2, 64, host)});
    ASSERT_EQ(messages.size(), 1u);
    for (const char* part : {"not enough host memory", "24.0 GiB is available (test)", "model.classes = 1000",
                             "model.samples_per_class = 100000", "model.dim = 64", "times 2 in flight (--threads)",
                             "Use fewer threads"})
        EXPECT_NE(messages[0].find(part), std::string::npos) << part << " in " << messages[0];
}

TEST(MemoryBudget, SaturatesInsteadOfWrapping) {
    const SweepSpec spec = testing::test_spec({.classes = 2, .samples_per_class = 1073741823, .dim = 128});
    const MemoryBudget budget = cpu_memory_budget(spec, 1 << 20, std::int64_t{1} << 62, HostMemory{1ull << 40, "test"});
    EXPECT_EQ(budget.needed(), UINT64_MAX);
    EXPECT_EQ(format_bytes(budget.needed()), "more than 16 EiB");
    EXPECT_EQ(memory_shortfalls(spec, {budget}).size(), 1u);
}

// A batch too large for memory, with trajectories in flight that fit: the
// message gives a batch size that fits, and it does fit while one more does not.
TEST(MemoryBudget, SuggestsTheLargestBatchThatFits) {
    SweepSpec spec = spec_of(ModelKind::embedding, Precision::float64, IntegratorMethod::gd, 4);
    spec.output.record_points = 1000000;
    spec.integrator.max_steps = 10000000;
    MemoryBudget budget = cpu_memory_budget(spec, 4, 100000, HostMemory{8ull << 30, "test"});
    const auto messages = memory_shortfalls(spec, {budget});
    ASSERT_EQ(messages.size(), 1u);
    const std::int64_t largest = largest_fitting_batch(budget);
    ASSERT_GT(largest, 0);
    EXPECT_NE(messages[0].find("Use --batch-size " + std::to_string(largest) + " or less"), std::string::npos)
        << messages[0];
    budget.batch_size = largest;
    EXPECT_LE(budget.needed(), budget.available);
    budget.batch_size = largest + 1;
    EXPECT_GT(budget.needed(), budget.available);
}

// Two CPU backends (--devices) share host memory: their needs add up.
TEST(MemoryBudget, BudgetsOfOneResourceAddUp) {
    const SweepSpec spec = spec_of(ModelKind::embedding, Precision::float64, IntegratorMethod::gd, 0);
    MemoryBudget one = cpu_memory_budget(spec, 1, 1, HostMemory{0, "unknown"});
    one.available = one.needed() + one.needed() / 2;
    EXPECT_TRUE(memory_shortfalls(spec, {one}).empty());
    EXPECT_EQ(memory_shortfalls(spec, {one, one}).size(), 1u);
    // Unknown memory is not checked.
    one.available = 0;
    EXPECT_TRUE(memory_shortfalls(spec, {one, one}).empty());
}

TEST(MemoryBudget, HostMemoryIsMeasured) {
    const HostMemory host = available_host_memory();
    EXPECT_GT(host.bytes, 0u);
    EXPECT_FALSE(host.source.empty());
}

// classes = 2, samples_per_class = 1073741823 called std::terminate from
// inside the OpenMP region (exit 134). Now an allocation failure comes out of
// run_batch as std::bad_alloc. In a child process whose address space is
// capped 256 MiB above what it uses, so the allocation (1 GiB of labels at
// the least) fails at once without touching memory; ASan cannot run under
// such a cap.
TEST(WorkerErrors, AllocationFailureInTheCpuBackendIsAnException) {
#if defined(__SANITIZE_ADDRESS__)
    GTEST_SKIP() << "RLIMIT_AS and AddressSanitizer do not mix";
#endif
    const SweepSpec spec = testing::test_spec(
        {.classes = 2, .samples_per_class = 1 << 27, .dim = 1, .seeds = 4,
         .axes = {testing::frustration_axis({0.0}), testing::head_dim_axis({0}), testing::lr_axis({0.1})}});
    const Grid grid(spec);
    const auto backend = make_cpu_backend(2);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        std::ifstream status("/proc/self/status");
        std::string line;
        std::uint64_t used_kib = 0;
        while (std::getline(status, line))
            if (line.rfind("VmSize:", 0) == 0) used_kib = std::stoull(line.substr(7));
        const rlim_t cap = (used_kib << 10) + (256u << 20);
        const rlimit limit{cap, cap};
        if (used_kib == 0 || ::setrlimit(RLIMIT_AS, &limit) != 0) std::_Exit(3);
        const std::int64_t flat[] = {0, 1, 2, 3};
        BatchOutput out;
        try {
            backend->run_batch(spec, grid, flat, out);
        } catch (const std::bad_alloc&) {
            std::_Exit(0);
        } catch (...) {
            std::_Exit(2);
        }
        std::_Exit(1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status)) << "the child died of signal " << WTERMSIG(status) << " (std::terminate aborts)";
    EXPECT_EQ(WEXITSTATUS(status), 0) << "1: no exception, 2: another exception, 3: no limit";
}

TEST(WorkerErrors, FirstErrorOfAnOpenMpLoopIsRethrownAfterIt) {
    FirstError error;
    std::vector<int> done(64, 0);
#pragma omp parallel for num_threads(4) schedule(dynamic, 1)
    for (int i = 0; i < 64; ++i) {
        try {
            if (i == 5) throw std::runtime_error("item 5 failed");
            done[static_cast<std::size_t>(i)] = 1;
        } catch (...) {
            error.capture();
        }
    }
    EXPECT_TRUE(error.failed());
    EXPECT_EQ(done[5], 0);
    try {
        error.rethrow_if_any();
        ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& caught) {
        EXPECT_STREQ(caught.what(), "item 5 failed");
    }
    FirstError none;
    EXPECT_NO_THROW(none.rethrow_if_any());
}

} // namespace
} // namespace collapse
