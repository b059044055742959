// The MPI side of MPI mode. Only rank 0's main thread and, on other ranks,
// the (serialised) chunk source call MPI, so MPI_THREAD_SERIALIZED suffices.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "collapse/mpi/mpi_session.hpp"

namespace collapse::mpi {
namespace {

enum Tag : int { tag_request = 1, tag_chunk = 2, tag_sign_off = 3 };
constexpr int progress_words = 4; // done, stable, collapsed, diverged

void check(int code, const char* call) {
    if (code == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(code, text, &length);
    throw std::runtime_error(std::string(call) + " failed: " + std::string(text, static_cast<std::size_t>(length)));
}

void pack(const RankProgress& progress, std::int64_t (&words)[progress_words]) {
    words[0] = progress.done;
    std::copy(progress.status_counts, progress.status_counts + 3, words + 1);
}

RankProgress unpack(const std::int64_t (&words)[progress_words]) {
    RankProgress progress;
    progress.done = words[0];
    std::copy(words + 1, words + 4, progress.status_counts);
    return progress;
}

} // namespace

bool built_with_mpi() { return true; }

Session::Session() {
    int provided = 0;
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided), "MPI_Init_thread");
    // Errors come back as codes (thrown by check) instead of aborting inside
    // the library, so a message can name the call. A dead peer is a different
    // matter: Open MPI's mpirun ends the whole job (docs/scaling.md).
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (provided < MPI_THREAD_SERIALIZED) {
        MPI_Finalize();
        throw std::runtime_error("the MPI library does not support MPI_THREAD_SERIALIZED");
    }
    check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
    MPI_Comm node = MPI_COMM_NULL;
    check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node),
          "MPI_Comm_split_type");
    check(MPI_Comm_rank(node, &local_rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(node, &local_size_), "MPI_Comm_size");
    MPI_Comm_free(&node);
}

Session::~Session() { MPI_Finalize(); }

bool Session::all_agree(bool ok) const {
    int mine = ok ? 1 : 0, all = 0;
    check(MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD), "MPI_Allreduce");
    return all != 0;
}

std::vector<std::int8_t> Session::max_on_root(const std::vector<std::int8_t>& values) const {
    std::vector<std::int8_t> result(rank_ == 0 ? values.size() : 0);
    // MPI counts are int: reduce in slices for grids beyond 2^31 entries.
    constexpr std::size_t slice = std::size_t{1} << 28;
    for (std::size_t start = 0; start < values.size(); start += slice) {
        const int count = static_cast<int>(std::min(slice, values.size() - start));
        check(MPI_Reduce(values.data() + start, rank_ == 0 ? result.data() + start : nullptr, count, MPI_INT8_T,
                         MPI_MAX, 0, MPI_COMM_WORLD),
              "MPI_Reduce");
    }
    return result;
}

std::int64_t Session::minimum(std::int64_t value) const {
    std::int64_t smallest = value;
    check(MPI_Allreduce(&value, &smallest, 1, MPI_INT64_T, MPI_MIN, MPI_COMM_WORLD), "MPI_Allreduce");
    return smallest;
}

void Session::abort(int code) const {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::abort(); // MPI_Abort does not return; this keeps [[noreturn]] honest
}

void coordinate_chunks(const Session& session, PendingQueue& queue, const std::atomic<bool>& stop_requested,
                       const std::atomic<bool>& local_done, const std::function<RankProgress()>& local_progress,
                       const std::function<void(const RankProgress&)>& on_progress) {
    std::vector<RankProgress> reported(static_cast<std::size_t>(session.size()));
    std::vector<bool> finished(static_cast<std::size_t>(session.size()), false);
    int active_workers = session.size() - 1;
    std::int64_t last_done = -1;
    while (active_workers > 0 || !local_done.load()) {
        int arrived = 0;
        MPI_Status status;
        check(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &arrived, &status), "MPI_Iprobe");
        if (arrived) {
            std::int64_t words[progress_words] = {0, 0, 0, 0};
            const int source = status.MPI_SOURCE;
            check(MPI_Recv(words, progress_words, MPI_INT64_T, source, status.MPI_TAG, MPI_COMM_WORLD,
                           MPI_STATUS_IGNORE),
                  "MPI_Recv");
            reported[static_cast<std::size_t>(source)] = unpack(words);
            // A rank is done when it signs off, after its last batch is
            // written: its final counts are then in `reported`.
            const bool done_now = status.MPI_TAG == tag_sign_off;
            if (status.MPI_TAG == tag_request) {
                const std::vector<std::int64_t> chunk = stop_requested.load() ? std::vector<std::int64_t>{}
                                                                              : queue.next();
                check(MPI_Send(chunk.data(), static_cast<int>(chunk.size()), MPI_INT64_T, source, tag_chunk,
                               MPI_COMM_WORLD),
                      "MPI_Send");
            }
            if (done_now && !finished[static_cast<std::size_t>(source)]) {
                finished[static_cast<std::size_t>(source)] = true;
                --active_workers;
            }
        } else {
            // Polling every 1 ms: a blocking MPI_Recv would spin a whole core in
            // Open MPI, taking it from rank 0's own backend thread.
            std::this_thread::sleep_for(std::chrono::microseconds(1000));
        }
        RankProgress total = local_progress ? local_progress() : RankProgress{};
        for (std::size_t r = 1; r < reported.size(); ++r) {
            total.done += reported[r].done;
            for (int s = 0; s < 3; ++s) total.status_counts[s] += reported[r].status_counts[s];
        }
        if (on_progress && total.done != last_done) on_progress(total);
        last_done = total.done;
    }
}

RemoteChunkSource::RemoteChunkSource(const Session& session, std::function<RankProgress()> progress)
    : session_(session), progress_(std::move(progress)) {}

std::vector<std::int64_t> RemoteChunkSource::next() {
    if (finished_) return {};
    std::int64_t words[progress_words];
    pack(progress_ ? progress_() : RankProgress{}, words);
    check(MPI_Send(words, progress_words, MPI_INT64_T, 0, tag_request, MPI_COMM_WORLD), "MPI_Send");
    MPI_Status status;
    check(MPI_Probe(0, tag_chunk, MPI_COMM_WORLD, &status), "MPI_Probe");
    int count = 0;
    check(MPI_Get_count(&status, MPI_INT64_T, &count), "MPI_Get_count");
    std::vector<std::int64_t> chunk(static_cast<std::size_t>(count));
    check(MPI_Recv(chunk.data(), count, MPI_INT64_T, 0, tag_chunk, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "MPI_Recv");
    finished_ = chunk.empty();
    (void)session_;
    return chunk;
}

void RemoteChunkSource::sign_off() {
    if (signed_off_) return;
    signed_off_ = finished_ = true;
    std::int64_t words[progress_words];
    pack(progress_ ? progress_() : RankProgress{}, words);
    check(MPI_Send(words, progress_words, MPI_INT64_T, 0, tag_sign_off, MPI_COMM_WORLD), "MPI_Send");
}

} // namespace collapse::mpi
