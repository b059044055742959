// Reading the launcher's environment instead of calling MPI_Init keeps a
// plain `collapse-sweep run` free of MPI: no PMIx handshake, no network
// probing, and it works on machines where MPI is installed but unconfigured.
#include <cstdlib>
#include <string>

#include "collapse/mpi/mpi_session.hpp"

namespace collapse::mpi {

LaunchInfo detect_launch() {
    LaunchInfo info;
    // Sizes first (Open MPI; MPICH, Intel MPI and Slurm's PMI-2), then bare
    // ranks (PMIx, as under `srun --mpi=pmix`): a size tells whether a
    // single-rank launch can skip MPI entirely.
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
        if (const char* value = std::getenv(name)) {
            info.launched = true;
            info.world_size = std::atoi(value);
            info.evidence = std::string(name) + "=" + value;
            return info;
        }
    for (const char* name : {"PMIX_RANK", "PMI_RANK"})
        if (const char* value = std::getenv(name)) {
            info.launched = true;
            info.evidence = std::string(name) + "=" + value;
            return info;
        }
    return info;
}

} // namespace collapse::mpi
