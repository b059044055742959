// MPI mode (docs/scaling.md): launch detection, the MPI session and the
// chunk protocol between rank 0 (coordinator) and the other ranks. This
// header has no <mpi.h>, so the CLI compiles the same with or without MPI;
// without it (built_with_mpi() false) Session's constructor throws.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "collapse/scheduler/parallel_sweep.hpp"

namespace collapse::mpi {

// What the environment says about an MPI launch, read without MPI_Init so a
// plain run never touches MPI. world_size is -1 when only a rank variable is
// set (PMIx without size): then the session must be started to know.
struct LaunchInfo {
    bool launched = false;
    int world_size = -1;
    std::string evidence; // the variable that told, for messages
};
LaunchInfo detect_launch();

bool built_with_mpi();

// MPI_Init_thread(MPI_THREAD_SERIALIZED) .. MPI_Finalize, with MPI errors
// returned (and turned into std::runtime_error) instead of aborting.
class Session {
public:
    Session();
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    int rank() const { return rank_; }
    int size() const { return size_; }
    int local_rank() const { return local_rank_; } // among ranks on this node
    int local_size() const { return local_size_; }

    // Collective: true on every rank iff `ok` is true on every rank. Used so
    // that a problem found by one rank (its file exists, ...) makes all stop.
    bool all_agree(bool ok) const;
    // Collective: element-wise maximum over ranks, on rank 0 only (empty
    // elsewhere). With statuses (-1 not run, >= 0 finished) this is the union
    // of finished work, since each trajectory finishes in at most one file.
    std::vector<std::int8_t> max_on_root(const std::vector<std::int8_t>& values) const;
    // Collective: the smallest `value` over all ranks, on every rank.
    std::int64_t minimum(std::int64_t value) const;
    // Ends every rank of the job at once (MPI_Abort): for errors after the
    // ranks have started exchanging chunks, where waiting could hang.
    [[noreturn]] void abort(int code) const;

private:
    int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
};

// Progress as a worker reports it with each chunk request.
struct RankProgress {
    std::int64_t done = 0;
    std::int64_t status_counts[3] = {0, 0, 0};
};

// Rank 0, on the calling (main) thread: answers chunk requests from the other
// ranks with queue.next() (empty once the queue is empty or stop_requested is
// set) until every other rank has signed off (RemoteChunkSource::sign_off)
// and local_done is true (rank 0's own compute thread, which pulls from the
// same queue directly). Polls without blocking, so the coordinator does not
// spin a core that rank 0's own backend needs. `on_progress` gets the sum of
// the workers' reports plus local_progress() whenever it changes.
void coordinate_chunks(const Session& session, PendingQueue& queue, const std::atomic<bool>& stop_requested,
                       const std::atomic<bool>& local_done, const std::function<RankProgress()>& local_progress,
                       const std::function<void(const RankProgress&)>& on_progress);

// Ranks > 0: the chunk source of run_sweep_pulling. Each call sends a request
// (with `progress()`) to rank 0 and waits for the answer.
class RemoteChunkSource {
public:
    RemoteChunkSource(const Session& session, std::function<RankProgress()> progress);
    std::vector<std::int64_t> next();
    // Tells rank 0, with the final progress, that this rank asks for nothing
    // more and has written everything. Every worker must call it once its
    // sweep has returned (also when interrupted). Idempotent.
    void sign_off();

private:
    const Session& session_;
    std::function<RankProgress()> progress_;
    bool finished_ = false;   // told "no more work"
    bool signed_off_ = false;
};

} // namespace collapse::mpi
