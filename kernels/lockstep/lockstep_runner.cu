#include "lockstep/lockstep_runner.hpp"

#include <thrust/execution_policy.h>

#include <cstdlib>
#include <string>

#include "collapse/lockstep/lockstep_layout.hpp"
#include "cuda_check.hpp"
#include "device_buffer.hpp"
#include "device_transfers.hpp"
#include "environment_choice.hpp"
#include "lockstep/cublaslt_gemm.hpp"
#include "lockstep/lockstep_algorithm.hpp"
#include "lockstep/lockstep_batch.hpp"
#include "lockstep/step_graph.hpp"

namespace collapse::cuda {
namespace {

template <class Real>
struct LockstepPools {
    lockstep::LockstepProblemArrays<Real, DeviceBuffer> problem;
    lockstep::LockstepArrays<Real, DeviceBuffer> arrays;
    DeviceBuffer<Real> pool;

    void upload_problem(const lockstep::LockstepProblem<Real>& host, cudaStream_t stream) {
        upload(problem.tasks, host.tasks.data(), host.tasks.size(), stream);
        upload(problem.label_degree, host.label_degree.data(), host.label_degree.size(), stream);
        upload(problem.primary_label, host.primary_label.data(), host.primary_label.size(), stream);
        upload(problem.second_label, host.second_label.data(), host.second_label.size(), stream);
        upload(problem.member_offset, host.member_offset.data(), host.member_offset.size(), stream);
        upload(problem.members, host.members.data(), host.members.size(), stream);
    }
};

} // namespace

struct LockstepRunner::Buffers {
    explicit Buffers(cudaStream_t stream) : gemm(stream) {}
    CublasLtBatchedGemm gemm; // its workspace and pinned algorithms last as long as the runner's buffers
    PerPrecision<LockstepPools> typed;
    DeviceBuffer<std::int64_t> record_steps;
    DeviceResults results;
    DeviceInitialStates initial_states;
};

LockstepChoice lockstep_choice_from_environment() {
    return static_cast<LockstepChoice>(environment_choice("COLLAPSE_CUDA_LOCKSTEP", {"auto", "on", "off"}));
}

bool lockstep_graph_from_environment() {
    return static_cast<LockstepGraphChoice>(environment_choice("COLLAPSE_CUDA_LOCKSTEP_GRAPH", {"on", "off"})) ==
           LockstepGraphChoice::on;
}

template <class Real>
bool use_lockstep(const HostBatch<Real>& host, IntegratorMethod method, const DeviceLimits& limits,
                  LockstepChoice choice) {
    if (choice == LockstepChoice::off || host.count == 0 || !lockstep::lockstep_supports(host, method)) return false;
    if (choice == LockstepChoice::on) return true;
    // The size rule reads the grid's widest head, not the batch's: a trajectory
    // must take the same path, and so give the same bits, whichever
    // trajectories share its batch (SPEC §5).
    TrajectoryDims widest = host.tasks[0].dims;
    widest.head_dim = host.grid_widest_head;
    for (std::int64_t b = 0; b < host.count; ++b)
        widest.head_dim = std::max(widest.head_dim, host.tasks[static_cast<std::size_t>(b)].dims.head_dim);
    const Precision precision = sizeof(Real) == sizeof(float) ? Precision::float32 : Precision::float64;
    return lockstep::prefer_lockstep(widest, precision, method, limits.shared_bytes_per_block_optin);
}

LockstepRunner::LockstepRunner()
    : buffers_(std::make_unique<Buffers>(stream_)), use_graph_(lockstep_graph_from_environment()) {}

// A new Buffers also makes a new cuBLASLt handle and workspace, and pins the
// algorithms again: milliseconds, once per switch of path.
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
    // No host synchronisation inside a step: par_nosync for every pass; the
    // host waits only at a poll (count_if, copy_if) and after the loop.
    const auto policy = thrust::cuda::par_nosync.on(stream_);
    return translating_batch_errors("the lockstep path", "lockstep batch", count, [&] {
        buffers.initial_states.place(host, pools.pool, stream_);
        pools.upload_problem(problem, stream_);
        upload(buffers.record_steps, host.record_steps.data(), host.record_steps.size(), stream_);
        DeviceResults& results = buffers.results;
        results.resize(count, host.record_steps.size());
        pools.arrays.resize(shape);

        lockstep::LockstepView<Real> v;
        v.shape = shape;
        pools.problem.bind(v);
        pools.arrays.bind(v);
        v.record_steps = buffers.record_steps.data();
        results.point_at(v);
        CudaGraphStepLauncher launch(stream_, use_graph_); // captures this batch's second step, replays it
        lockstep::run_lockstep(policy, buffers.gemm, v, pools.pool.data(), problem.tasks[0].settings.max_steps,
                               options, launch);
        graph_captures_ += launch.captures();
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
