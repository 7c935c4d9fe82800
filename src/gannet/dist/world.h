// The process's world communicator: MPI's world when the program was launched by mpirun (OpenMPI
// sets OMPI_COMM_WORLD_SIZE), a LocalCommunicator otherwise, so that a plain `gannet train` never
// starts MPI.
#pragma once
#include "gannet/dist/communicator.h"

namespace gannet::dist {

// Whether this process was started by mpirun (whatever the world size).
bool launched_by_mpi();
// Initializes MPI on the first call when launched by mpirun; MPI is finalized at exit.
Communicator& world();
// Ends every rank of the job with `code` (MPI_Abort) once MPI is running; else does nothing. The CLI
// calls it on an error so that the other ranks do not wait forever in a collective.
void abort_world(int code);
// Processes of this job on this machine (OMPI_COMM_WORLD_LOCAL_SIZE; 1 without mpirun), for the
// choice of threads per process.
int local_process_count();

}  // namespace gannet::dist
