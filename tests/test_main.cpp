// The test programs' main: OpenBLAS's kernels chosen as gannet's own programs choose them, then
// GoogleTest.
#include <gtest/gtest.h>

#include "gannet/kernels/blas_core.h"

int main(int argc, char** argv) {
  gannet::kernels::ensure_blas_core(argv);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
