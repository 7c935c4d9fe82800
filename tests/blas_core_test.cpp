#include "gannet/kernels/blas_core.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace gannet::kernels {
namespace {

TEST(BlasCore, FallbackKernelsAreUpgradedToWhatTheCpuRuns) {
  BlasCpuFeatures spr{true, true, true}, skx{true, true, false}, hsw{true, false, false}, old{};
  EXPECT_EQ(blas_core_upgrade("Prescott", spr), "Cooperlake");
  EXPECT_EQ(blas_core_upgrade("Prescott", skx), "SkylakeX");
  EXPECT_EQ(blas_core_upgrade("prescott", hsw), "Haswell");
  EXPECT_EQ(blas_core_upgrade("Nehalem", hsw), "Haswell");
  EXPECT_EQ(blas_core_upgrade("Sandybridge", skx), "SkylakeX");
  EXPECT_EQ(blas_core_upgrade("Prescott", old), "");  // nothing better to run
}

TEST(BlasCore, KernelsOpenBlasChoseItselfAreKept) {
  BlasCpuFeatures spr{true, true, true};
  for (const char* core : {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"})
    EXPECT_EQ(blas_core_upgrade(core, spr), "") << core;
}

TEST(BlasCore, TestProgramRunsTheUpgradedKernels) {
  // test_main restarts the program when OpenBLAS fell back; after that no upgrade is left to make
  // unless the user chose the kernels with OPENBLAS_CORETYPE.
  const char* env = std::getenv("OPENBLAS_CORETYPE");
  bool chosen_by_us = env == nullptr || std::string(env) == blas_core_upgrade("Prescott", blas_cpu_features());
  if (chosen_by_us) {
    EXPECT_EQ(blas_core_upgrade(blas_core_name(), blas_cpu_features()), "") << blas_core_name();
  }
}

}  // namespace
}  // namespace gannet::kernels
