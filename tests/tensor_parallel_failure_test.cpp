// A rank of a tensor-parallel engine that dies mid-run ends the job with an error (mpirun reports
// the dead rank's status) instead of leaving the others waiting in a collective: the multi-process
// half is Death.TensorParallelEngineRankThatDiesEndsTheJob in tests/dist.
#include <gtest/gtest.h>

#include <chrono>

#include "command_output.h"
#include "gannet/core/error.h"

namespace {

TEST(TensorParallelFailure, DeadRankEndsTheJob) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto [rc, out] = gannet::testing::command_status(gannet::str(
      "env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 GANNET_DIST_DIE=1 timeout 120 ",
      GANNET_MPIRUN, " -np 2 --oversubscribe ", GANNET_DIST_TEST_BINARY,
      " --gtest_filter=Death.TensorParallelEngine* 2>&1"));
  EXPECT_EQ(rc, 3) << out;  // mpirun ends the job with the dead rank's status
  EXPECT_NE(rc, 124) << "timed out: rank 0 hung in the engine's collective";
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 60);
}

}  // namespace
