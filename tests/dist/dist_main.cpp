// Main of the multi-process test program, run by CTest under `mpirun -np 2` and `-np 4`: every rank
// runs every test; a failure on any rank makes mpirun exit non-zero.
#include <gtest/gtest.h>

#include "gannet/dist/world.h"
#include "gannet/kernels/blas_core.h"

int main(int argc, char** argv) {
  gannet::kernels::ensure_blas_core(argv);
  testing::InitGoogleTest(&argc, argv);
  gannet::dist::world();  // MPI_Init before any test
  if (gannet::dist::world().rank() != 0) {  // one rank prints; the others only report failures
    auto& listeners = testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  return RUN_ALL_TESTS();
}
