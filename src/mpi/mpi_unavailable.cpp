// Linked instead of mpi_session.cpp when CMake found no MPI: the binary runs
// as before, and an MPI launch is refused with a clear message rather than R
// copies of the same run racing for one output file.
#include <stdexcept>

#include "collapse/mpi/mpi_session.hpp"

namespace collapse::mpi {
namespace {
[[noreturn]] void unavailable() {
    throw std::runtime_error("this collapse-sweep was built without MPI (CMake found no MPI); rebuild with MPI "
                             "installed, or run without mpirun/srun");
}
} // namespace

bool built_with_mpi() { return false; }
Session::Session() { unavailable(); }
Session::~Session() = default;
bool Session::all_agree(bool) const { unavailable(); }
std::vector<std::int8_t> Session::max_on_root(const std::vector<std::int8_t>&) const { unavailable(); }
std::int64_t Session::minimum(std::int64_t) const { unavailable(); }
void Session::abort(int) const { unavailable(); }
void coordinate_chunks(const Session&, PendingQueue&, const std::atomic<bool>&, const std::atomic<bool>&,
                       const std::function<RankProgress()>&, const std::function<void(const RankProgress&)>&) {
    unavailable();
}
RemoteChunkSource::RemoteChunkSource(const Session& session, std::function<RankProgress()> progress)
    : session_(session), progress_(std::move(progress)) {
    unavailable();
}
std::vector<std::int64_t> RemoteChunkSource::next() { unavailable(); }
void RemoteChunkSource::sign_off() {}

} // namespace collapse::mpi
