// The OpenMP backend: one trajectory per thread at a time, dynamic schedule
// because collapse makes trajectories end at very different steps. Each
// trajectory is integrated sequentially by the shared runner, so results do
// not depend on the thread count or the batch composition.
#include <omp.h>

#include <algorithm>
#include <fstream>
#include <vector>

#include "collapse/backend/backend.hpp"
#include "collapse/backend/batch_assembly.hpp"
#include "collapse/backend/parallel_errors.hpp"
#include "collapse/integrators/gradient_descent.hpp"
#include "collapse/integrators/runge_kutta4.hpp"
#include "collapse/model/setup.hpp"
#include "collapse/model/validate.hpp"
#include "collapse/record_steps.hpp"
#include "collapse/trajectory/runner.hpp"

namespace collapse {
namespace {

std::string cpu_model_name() {
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpuinfo, line))
        if (line.rfind("model name", 0) == 0) {
            const auto colon = line.find(':');
            if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
        }
    return "unknown CPU";
}

class CpuBackend final : public Backend {
public:
    explicit CpuBackend(int threads) : threads_(threads > 0 ? threads : omp_get_max_threads()) {}

    std::string name() const override { return "cpu"; }
    std::string device_name() const override {
        return cpu_model_name() + " (" + std::to_string(threads_) + " threads)";
    }
    // Enough work per batch that the per-batch costs (the HDF5 writes and the
    // SWMR flush, 10-25 ms measured) stay a small share: a 10^6-trajectory
    // sweep of a tiny model took 189 s in batches of 128 and 11 s in batches
    // of 8192 (docs/performance.md, "Memory"). At least 64 trajectories per
    // thread, and at most ~16 MiB of batch output, so memory stays bounded.
    std::int64_t default_batch_size(const SweepSpec& spec) const override {
        const ModelShape& shape = spec.shape;
        const double N = shape.samples(), K = shape.classes, d = shape.dim, h = spec.max_head_dim(),
                     p = shape.input_dim;
        // FLOP per gradient evaluation, roughly (docs/performance.md, "FLOP count per step").
        const double per_step = (h > 0 ? 6 * N * d * d + 6 * h * d * d : 0) + (10 + 3 * K) * N * d + 4 * N * d * p;
        const double evaluations = spec.integrator.method == IntegratorMethod::rk4 ? 4 : 1;
        const double per_trajectory =
            std::max(1.0, per_step * evaluations * static_cast<double>(spec.integrator.max_steps));
        constexpr double flop_per_thread_and_batch = 2e9; // ~0.05 s per thread at the measured rates
        const double by_work = flop_per_thread_and_batch * threads_ / per_trajectory;
        const double output_bytes = 8 * (4.0 * static_cast<double>(record_steps(spec).size()) + K * d + d * d +
                                         (spec.output.save_samples ? N * d : 0) + (spec.output.save_initial ? 2 * h * d : 0)) +
                                    256; // summary and indices
        const double by_memory = 16.0 * 1024 * 1024 / output_bytes;
        const double batch = std::min(std::max(64.0 * threads_, by_work), by_memory);
        return std::max<std::int64_t>(1, static_cast<std::int64_t>(batch));
    }

    std::vector<MemoryBudget> memory_budgets(const SweepSpec& spec, std::int64_t batch_size) const override {
        return {cpu_memory_budget(spec, threads_, batch_size, available_host_memory())};
    }

    void run_batch(const SweepSpec& spec, const Grid& grid, std::span<const std::int64_t> flat_indices,
                   BatchOutput& out) override {
        // Parameter errors must surface here: exceptions cannot leave an OpenMP region.
        validate_shape(spec.shape);
        validate_integrator(spec.integrator);
        for (std::int64_t flat : flat_indices) validate_trajectory(grid.params(flat));
        prepare_batch_output(spec, flat_indices, out);
        const bool rk4 = spec.integrator.method == IntegratorMethod::rk4;
        if (spec.integrator.precision == Precision::float32)
            rk4 ? run_typed<float, RungeKutta4>(spec, grid, out) : run_typed<float, GradientDescent>(spec, grid, out);
        else
            rk4 ? run_typed<double, RungeKutta4>(spec, grid, out) : run_typed<double, GradientDescent>(spec, grid, out);
    }

private:
    template <class Real, class Integrator>
    void run_typed(const SweepSpec& spec, const Grid& grid, BatchOutput& out) const {
        const std::vector<std::int64_t> steps = record_steps(spec);
        const auto trace_length = static_cast<std::size_t>(out.trace_length);
        const auto count = static_cast<std::int64_t>(out.size());
        const int max_head = spec.max_head_dim();
        FirstError error;
#pragma omp parallel num_threads(threads_)
        {
            std::vector<Real> state, gradient, workspace, scratch; // reused across this thread's trajectories
#pragma omp for schedule(dynamic, 1)
            for (std::int64_t slot = 0; slot < count; ++slot) {
                if (error.failed()) continue;
                try {
                    const auto b = static_cast<std::size_t>(slot);
                    const TrajectoryParams params = grid.params(out.flat_index[b]);
                    const SeedDraws draws = draw_seed(spec.shape, max_head, spec.master_seed, params.seed_index);
                    const TrajectorySetup<Real> setup = make_trajectory<Real>(spec.shape, params, draws);
                    const StateLayout state_layout(setup.dims);
                    state = setup.initial_state;
                    gradient.resize(state_layout.size);
                    workspace.resize(WorkspaceLayout(setup.dims).size);
                    scratch.resize(Integrator::scratch_vectors * state_layout.size);
                    store_initial_head(spec, setup.dims, setup.initial_state.data(), b, out);

                    TrajectoryRecorder recorder;
                    recorder.record_steps = steps.data();
                    recorder.record_count = static_cast<int>(steps.size());
                    recorder.label_distance = out.label_distance_trace.data() + b * trace_length;
                    recorder.projected_distance = out.projected_distance_trace.data() + b * trace_length;
                    recorder.accuracy = out.accuracy_trace.data() + b * trace_length;
                    recorder.loss = out.loss_trace.data() + b * trace_length;
                    recorder.summary = &out.summary[b];
                    const TrajectoryBuffers<Real> buffers{state.data(), gradient.data(), workspace.data(), scratch.data()};
                    run_trajectory<Real, Integrator>(setup.problem(), buffers,
                                                     run_settings(spec, params, setup.reference_distance), recorder);
                    store_final_geometry(spec, setup.dims, state.data(), setup.inputs.empty() ? nullptr : setup.inputs.data(),
                                         b, out);
                } catch (...) {
                    error.capture();
                }
            }
        }
        error.rethrow_if_any();
    }

    int threads_;
};

} // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads) { return std::make_unique<CpuBackend>(threads); }

} // namespace collapse
