#include "lockstep/lockstep_runner.hpp"

#include <thrust/execution_policy.h>

#include <cstdlib>
#include <string>

#include "collapse/lockstep/lockstep_layout.hpp"
#include "cuda_check.hpp"
#include "device_buffer.hpp"
#include "device_transfers.hpp"
#include "environment_choice.hpp"
#include "lockstep/cublas_gemm.hpp"
#include "lockstep/lockstep_algorithm.hpp"
#include "lockstep/lockstep_batch.hpp"

namespace collapse::cuda {
namespace {

template <class Real>
struct LockstepPools {
    lockstep::LockstepArrays<Real, DeviceBuffer> arrays;
    DeviceBuffer<lockstep::LockstepTask<Real>> tasks;
    DeviceBuffer<Real> label_degree, pool;
};

} // namespace

struct LockstepRunner::Buffers {
    explicit Buffers(cudaStream_t stream) : gemm(stream) {}
    CublasBatchedGemm gemm;
    PerPrecision<LockstepPools> typed;
    DeviceBuffer<int> primary_label, second_label, member_offset, members;
    DeviceBuffer<std::int64_t> record_steps;
    DeviceResults results;
    DeviceInitialStates initial_states;
};

LockstepChoice lockstep_choice_from_environment() {
    return static_cast<LockstepChoice>(environment_choice("COLLAPSE_CUDA_LOCKSTEP", {"auto", "on", "off"}));
}

template <class Real>
bool use_lockstep(const HostBatch<Real>& host, IntegratorMethod method, const DeviceLimits& limits,
                  LockstepChoice choice) {
    if (choice == LockstepChoice::off || host.count == 0 || !lockstep::lockstep_supports(host, method)) return false;
    if (choice == LockstepChoice::on) return true;
    TrajectoryDims widest = host.tasks[0].dims;
    for (std::int64_t b = 0; b < host.count; ++b)
        widest.head_dim = std::max(widest.head_dim, host.tasks[static_cast<std::size_t>(b)].dims.head_dim);
    const Precision precision = sizeof(Real) == sizeof(float) ? Precision::float32 : Precision::float64;
    return lockstep::prefer_lockstep(widest, precision, method, limits.shared_bytes_per_block_optin);
}

LockstepRunner::LockstepRunner() : buffers_(std::make_unique<Buffers>(stream_)) {}

// A new Buffers also makes a new cuBLAS handle: a millisecond, once per switch of path.
void LockstepRunner::release_device_memory() { buffers_ = std::make_unique<Buffers>(stream_); }

LockstepRunner::~LockstepRunner() = default;

template <class Real>
StatusCounts LockstepRunner::run(HostBatch<Real>& host, IntegratorMethod method, BatchOutput& out) {
    Buffers& buffers = *buffers_;
    LockstepPools<Real>& pools = buffers.typed.template get<Real>();
    lockstep::LockstepProblem<Real> problem = lockstep::make_lockstep_problem(host, method);
    // One lane per trajectory (L = B) unless set_lanes asked for fewer: the
    // batch size already budgets the memory. Fewer lanes are refilled from
    // the queue, with the same results.
    lockstep::LockstepOptions options;
    options.lanes = lanes_;
    options.poll_interval = poll_interval_;
    problem.shape.lanes = lockstep::lane_count(problem.shape.batch, options.lanes);
    const lockstep::LockstepShape& shape = problem.shape;
    const auto count = static_cast<std::size_t>(host.count);
    if (count == 0) return StatusCounts{};
    const auto policy = thrust::cuda::par.on(stream_);
    return translating_batch_errors("the lockstep path", "lockstep batch", count, [&] {
        buffers.initial_states.place(host, pools.pool, stream_);
        upload(pools.tasks, problem.tasks.data(), problem.tasks.size(), stream_);
        upload(pools.label_degree, problem.label_degree.data(), problem.label_degree.size(), stream_);
        upload(buffers.primary_label, problem.primary_label.data(), problem.primary_label.size(), stream_);
        upload(buffers.second_label, problem.second_label.data(), problem.second_label.size(), stream_);
        upload(buffers.member_offset, problem.member_offset.data(), problem.member_offset.size(), stream_);
        upload(buffers.members, problem.members.data(), problem.members.size(), stream_);
        upload(buffers.record_steps, host.record_steps.data(), host.record_steps.size(), stream_);
        DeviceResults& results = buffers.results;
        results.resize(count, host.record_steps.size());
        pools.arrays.resize(shape);

        lockstep::LockstepView<Real> v;
        v.shape = shape;
        v.tasks = pools.tasks.data();
        v.primary_label = buffers.primary_label.data();
        v.second_label = buffers.second_label.data();
        v.label_degree = pools.label_degree.data();
        v.member_offset = buffers.member_offset.data();
        v.members = buffers.members.data();
        pools.arrays.bind(v);
        v.record_steps = buffers.record_steps.data();
        results.point_at(v);
        lockstep::run_lockstep(policy, buffers.gemm, v, pools.pool.data(), problem.tasks[0].settings.max_steps,
                               options);
        check_cuda(cudaStreamSynchronize(stream_), "lockstep batch (cudaStreamSynchronize after the step loop)",
                   __FILE__ ":" COLLAPSE_CUDA_STRINGIFY(__LINE__));
        return results.collect(host, pools.pool, out, "the lockstep path", stream_);
    });
}

template bool use_lockstep<float>(const HostBatch<float>&, IntegratorMethod, const DeviceLimits&, LockstepChoice);
template bool use_lockstep<double>(const HostBatch<double>&, IntegratorMethod, const DeviceLimits&, LockstepChoice);
template StatusCounts LockstepRunner::run<float>(HostBatch<float>&, IntegratorMethod, BatchOutput&);
template StatusCounts LockstepRunner::run<double>(HostBatch<double>&, IntegratorMethod, BatchOutput&);

} // namespace collapse::cuda
