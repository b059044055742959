// CUDA builds only, no device needed: runs the CUDA backend's host packing,
// the kernel's per-thread body (run_batch_slot, executed on the host over the
// same pools and offsets) and the unpacking, and checks the result against
// the CPU backend. This covers everything of a GPU batch except the
// transfers and the device arithmetic, on every CI run.
#include <gtest/gtest.h>

#include <vector>

#include "backend_test_support.hpp"
#include "batch_packing.hpp"
#include "collapse/integrators/gradient_descent.hpp"
#include "collapse/integrators/runge_kutta4.hpp"
#include "collapse/sweep/grid.hpp"
#include "trajectory_kernel.hpp"

namespace collapse::testing {
namespace {

// A Backend whose run_batch is what CudaBackend does, with the kernel launch
// replaced by a host loop over run_batch_slot.
class HostEmulatedCudaBackend final : public Backend {
public:
    std::string name() const override { return "cuda-host-emulation"; }
    std::string device_name() const override { return "host"; }
    std::int64_t default_batch_size(const SweepSpec&) const override { return 64; }

    void run_batch(const SweepSpec& spec, const Grid& grid, std::span<const std::int64_t> flat_indices,
                   BatchOutput& out) override {
        if (spec.integrator.precision == Precision::float32) run_typed<float>(spec, grid, flat_indices, out);
        else run_typed<double>(spec, grid, flat_indices, out);
    }

private:
    template <class Real>
    void run_typed(const SweepSpec& spec, const Grid& grid, std::span<const std::int64_t> flat_indices,
                   BatchOutput& out) {
        cuda::HostBatch<Real> host(cuda::HostMemory::pageable);
        cuda::pack_batch(spec, grid, flat_indices, host, out);
        // The device pools, here on the host; poison what the kernel must write.
        std::vector<Real> gradients(host.sizes.states, Real(-7)), workspaces(host.sizes.workspaces, Real(-7)),
            scratch(host.sizes.scratch, Real(-7));
        for (TrajectorySummary& summary : out.summary) summary = TrajectorySummary{};
        cuda::TrajectoryKernelArgs<Real> args;
        args.count = host.count;
        args.tasks = host.tasks.data();
        args.states = host.states.data();
        args.gradients = gradients.data();
        args.workspaces = workspaces.data();
        args.scratch = scratch.data();
        args.primary_labels = host.primary_labels.data();
        args.second_labels = host.second_labels.data();
        args.label_degrees = host.label_degrees.data();
        args.inputs = host.inputs.data();
        args.record_steps = host.record_steps.data();
        args.record_count = static_cast<int>(host.record_steps.size());
        args.label_distance = out.label_distance_trace.data();
        args.projected_distance = out.projected_distance_trace.data();
        args.accuracy = out.accuracy_trace.data();
        args.loss = out.loss_trace.data();
        args.summaries = out.summary.data();
        // Slots in reverse, so nothing can rely on running in order.
        for (std::int64_t slot = host.count; slot-- > 0;) {
            if (spec.integrator.method == IntegratorMethod::rk4) cuda::run_batch_slot<Real, RungeKutta4>(args, slot);
            else cuda::run_batch_slot<Real, GradientDescent>(args, slot);
        }
        cuda::unpack_final_states(spec, host, out);
    }
};

class KernelHostEmulation : public ::testing::TestWithParam<std::tuple<Precision, IntegratorMethod>> {};

TEST_P(KernelHostEmulation, PackingAndKernelBodyReproduceTheCpuBackend) {
    const auto [precision, method] = GetParam();
    const SweepSpec spec = mixed_spec(precision, method);
    const auto cpu = make_cpu_backend(1);
    HostEmulatedCudaBackend emulated;
    // Same code, same compiler: bit for bit. Batch sizes exercise offsets.
    const auto expected = run_grid(*cpu, spec, 64);
    for (std::int64_t batch_size : {1, 7, 64}) {
        SCOPED_TRACE("batch size " + std::to_string(batch_size));
        expect_bit_identical(expected, run_grid(emulated, spec, batch_size));
    }
}

INSTANTIATE_TEST_SUITE_P(PrecisionAndMethod, KernelHostEmulation,
                         ::testing::Combine(::testing::Values(Precision::float32, Precision::float64),
                                            ::testing::Values(IntegratorMethod::gd, IntegratorMethod::rk4)));

TEST(KernelHostEmulation, TeacherStudentReproducesTheCpuBackend) {
    const SweepSpec spec = teacher_student_spec(Precision::float64);
    const auto cpu = make_cpu_backend(1);
    HostEmulatedCudaBackend emulated;
    expect_bit_identical(run_grid(*cpu, spec, 64), run_grid(emulated, spec, 5));
}

} // namespace
} // namespace collapse::testing
