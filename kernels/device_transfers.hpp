// Pieces both device runners (device_batch.cu, lockstep/lockstep_runner.cu)
// use: checked asynchronous copies on a stream, a batch's initial states on
// the device, and its results (traces, summaries, the status count that
// proves every trajectory got a status). Include from .cu files only: the
// functors are __host__ __device__ and the rest runs Thrust on the device.
#pragma once

#include <cuda_runtime_api.h>
#include <thrust/execution_policy.h>
#include <thrust/system_error.h>
#include <thrust/transform_reduce.h>

#include <cstddef>
#include <cstdint>
#include <new>
#include <string>

#include "batch_packing.hpp"
#include "collapse/results.hpp"
#include "cuda_check.hpp"
#include "device_batch.hpp"
#include "device_buffer.hpp"
#include "initial_state_generation.hpp"

namespace collapse::cuda {

template <class T>
void upload(DeviceBuffer<T>& device, const T* host, std::size_t count, cudaStream_t stream) {
    device.resize(count);
    if (count > 0)
        COLLAPSE_CUDA_CHECK(cudaMemcpyAsync(device.data(), host, count * sizeof(T), cudaMemcpyHostToDevice, stream));
}

template <class T>
void download(T* host, const T* device, std::size_t count, cudaStream_t stream) {
    if (count > 0) COLLAPSE_CUDA_CHECK(cudaMemcpyAsync(host, device, count * sizeof(T), cudaMemcpyDeviceToHost, stream));
}

template <class T>
void download(T* host, const DeviceBuffer<T>& device, cudaStream_t stream) {
    download(host, device.data(), device.size(), stream);
}

// One trajectory's status as a one-hot count, summed by transform_reduce.
struct CountStatus {
    __host__ __device__ StatusCounts operator()(const TrajectorySummary& summary) const {
        StatusCounts counts;
        const int index = static_cast<int>(summary.status) + 1;
        if (index >= 0 && index < 4) counts.by_status[index] = 1;
        return counts;
    }
};

struct AddCounts {
    __host__ __device__ StatusCounts operator()(const StatusCounts& a, const StatusCounts& b) const {
        StatusCounts sum;
        for (int s = 0; s < 4; ++s) sum.by_status[s] = a.by_status[s] + b.by_status[s];
        return sum;
    }
};

// A batch's initial states into `states` (host.sizes.states entries): made
// on the device from the Philox streams when host.device_initial_states
// (bit-identical to the host's make_trajectory), uploaded otherwise.
struct DeviceInitialStates {
    DeviceBuffer<std::int64_t> slot_seeds;
    DeviceBuffer<InitialStateTask> tasks;
    DeviceBuffer<double> seed_normals;

    template <class Real>
    void place(const HostBatch<Real>& host, DeviceBuffer<Real>& states, cudaStream_t stream) {
        if (!host.device_initial_states) {
            upload(states, host.states.data(), host.sizes.states, stream);
            return;
        }
        const auto count = static_cast<std::size_t>(host.count);
        upload(slot_seeds, host.slot_seeds.data(), host.slot_seeds.size(), stream);
        upload(tasks, host.initial_tasks.data(), count, stream);
        seed_normals.resize(host.slot_seeds.size() * host.seed_normals.size);
        states.resize(host.sizes.states);
        generate_initial_states(thrust::cuda::par.on(stream), host.master_seed, slot_seeds.data(),
                                host.slot_seeds.size(), host.seed_normals, seed_normals.data(), tasks.data(), count,
                                host.state_stride, states.data());
    }
};

// A batch's traces ([count][record_count]) and summaries on the device.
struct DeviceResults {
    DeviceBuffer<double> label_distance, projected_distance, accuracy, loss;
    DeviceBuffer<TrajectorySummary> summaries;

    void resize(std::size_t count, std::size_t record_count) {
        for (DeviceBuffer<double>* trace : {&label_distance, &projected_distance, &accuracy, &loss})
            trace->resize(count * record_count);
        summaries.resize(count);
    }

    // Statuses counted on the device. A trajectory left without one is a
    // BackendError naming `path`, not a wrong file.
    StatusCounts checked_status_counts(std::int64_t count, const std::string& path, cudaStream_t stream) const {
        const StatusCounts counts = thrust::transform_reduce(thrust::cuda::par.on(stream), summaries.data(),
                                                             summaries.data() + summaries.size(), CountStatus{},
                                                             StatusCounts{}, AddCounts{});
        if (counts.of(TrajectoryStatus::not_run) != 0 ||
            counts.of(TrajectoryStatus::stable) + counts.of(TrajectoryStatus::collapsed) +
                    counts.of(TrajectoryStatus::diverged) != count)
            throw BackendError(path + " left " + std::to_string(counts.of(TrajectoryStatus::not_run)) + " of " +
                               std::to_string(count) + " trajectories without a status");
        return counts;
    }

    // Into `out` (prepared by pack_batch); asynchronous on `stream`.
    void download(BatchOutput& out, cudaStream_t stream) const {
        cuda::download(out.label_distance_trace.data(), label_distance, stream);
        cuda::download(out.projected_distance_trace.data(), projected_distance, stream);
        cuda::download(out.accuracy_trace.data(), accuracy, stream);
        cuda::download(out.loss_trace.data(), loss, stream);
        cuda::download(out.summary.data(), summaries, stream);
    }

    // Points the result arguments of a kernel or of the lockstep loop at
    // these buffers (point_results_at in batch_packing.hpp, on the device).
    template <class Args>
    void point_at(Args& args) {
        args.label_distance = label_distance.data();
        args.projected_distance = projected_distance.data();
        args.accuracy = accuracy.data();
        args.loss = loss.data();
        args.summaries = summaries.data();
    }

    // The end of a batch whose work on `stream` has finished: its statuses
    // counted (checked_status_counts, naming `path`), then the final states
    // from `states` into host.states and the results into `out`.
    template <class Real>
    StatusCounts collect(HostBatch<Real>& host, const DeviceBuffer<Real>& states, BatchOutput& out,
                         const std::string& path, cudaStream_t stream) const {
        const StatusCounts counts = checked_status_counts(host.count, path, stream);
        cuda::download(host.states.data(), states, stream);
        download(out, stream);
        COLLAPSE_CUDA_CHECK(cudaStreamSynchronize(stream));
        return counts;
    }
};

// Runs `batch` (a device runner's work for one batch of `count`
// trajectories) and turns a failed Thrust call or allocation into a
// BackendError: one naming `thrust_site`, or one that asks for a smaller
// --batch-size than this `batch_kind`'s.
template <class Batch>
StatusCounts translating_batch_errors(const char* thrust_site, const char* batch_kind, std::size_t count,
                                      Batch&& batch) {
    try {
        return batch();
    } catch (const BackendError&) {
        throw;
    } catch (const thrust::system_error& error) {
        throw BackendError(std::string("CUDA error in a Thrust call of ") + thrust_site + ": " + error.what());
    } catch (const std::bad_alloc&) {
        throw BackendError(std::string("out of device memory for a ") + batch_kind + " of " + std::to_string(count) +
                           " trajectories; use a smaller --batch-size");
    }
}

} // namespace collapse::cuda
