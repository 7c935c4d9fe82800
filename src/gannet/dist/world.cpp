#include "gannet/dist/world.h"

#include <mpi.h>

#include <cstdlib>
#include <limits>
#include <memory>

#include "gannet/core/error.h"
#include "gannet/core/parse_number.h"
#include "gannet/dist/mpi_communicator.h"

namespace gannet::dist {

namespace {

struct World {
  std::unique_ptr<Communicator> comm;
  bool mpi = false;
  World() {
    if (!launched_by_mpi()) {
      comm = std::make_unique<LocalCommunicator>();
      return;
    }
    int provided = 0;
    // Serialized: one thread at a time, not always the main one (a server's scheduler thread
    // runs the tensor-parallel engine's collectives).
    int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
    GANNET_CHECK(rc == MPI_SUCCESS, "MPI_Init_thread failed (code ", rc, ")");
    GANNET_CHECK(provided >= MPI_THREAD_SERIALIZED, "this MPI library does not let two threads take turns at it");
    mpi = true;
    comm = std::make_unique<MpiCommunicator>(MPI_COMM_WORLD);
  }
  ~World() {
    comm.reset();
    int finalized = 0;
    if (mpi && MPI_Finalized(&finalized) == MPI_SUCCESS && !finalized) MPI_Finalize();
  }
};

World* g_world = nullptr;

World& the_world() {
  static World w;
  g_world = &w;
  return w;
}

}  // namespace

bool launched_by_mpi() { return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr; }

Communicator& world() { return *the_world().comm; }

void abort_world(int code) {
  if (!g_world || !g_world->mpi) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Abort(MPI_COMM_WORLD, code);
}

int local_process_count() {
  const char* s = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  if (!s) return 1;
  const int64_t n = parse_int64(s, "OMPI_COMM_WORLD_LOCAL_SIZE");
  return n > 0 && n <= std::numeric_limits<int>::max() ? (int)n : 1;
}

}  // namespace gannet::dist
