// Helpers for kernel tests: random data, the ISAs this CPU can run, and closeness checks.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "gannet/core/cpu.h"
#include "gannet/core/rng.h"

namespace gannet::testing {

inline std::vector<float> random_vec(int64_t n, uint64_t seed, float scale = 1.f) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = scale * rng.normal();
  return v;
}

// The vector ISAs this process runs: those the CPU supports, up to the one GANNET_ISA lowers it
// to (core/cpu.h). The scalar reference is always compared against.
inline std::vector<Isa> vector_isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::avx2, Isa::avx512})
    if (isa <= best_isa()) out.push_back(isa);
  return out;
}

// Says which vector ISAs a test did not run (this CPU lacks them, or GANNET_ISA lowered them).
inline void note_missing_isas() {
  const std::vector<Isa> have = vector_isas();
  for (Isa isa : {Isa::avx2, Isa::avx512})
    if (std::find(have.begin(), have.end(), isa) == have.end())
      std::printf("[   NOTE   ] %s kernels not tested: not available here (CPU or GANNET_ISA)\n", isa_name(isa));
}

}  // namespace gannet::testing

// For a test that compares only vector kernels against the scalar reference: on a CPU (or a
// GANNET_ISA) without AVX2 its loops would run over nothing and pass, so it skips, saying why;
// where only AVX-512 is missing it runs the AVX2 kernels and notes the rest.
#define GANNET_SKIP_WITHOUT_VECTOR_ISA()                                                        \
  do {                                                                                          \
    if (::gannet::testing::vector_isas().empty())                                               \
      GTEST_SKIP() << "no vector ISA available (CPU without AVX2, or GANNET_ISA=scalar): "      \
                      "no vector kernel to compare with the scalar reference";                  \
    ::gannet::testing::note_missing_isas();                                                     \
  } while (0)

namespace gannet::testing {

// Sizes that catch tail handling: 1, primes, around vector widths, and a large one.
inline std::vector<int64_t> awkward_sizes() { return {1, 2, 7, 8, 15, 16, 17, 31, 33, 97, 257, 1031, 40009}; }

inline void expect_close(const std::vector<float>& got, const std::vector<float>& want, float rtol,
                         float atol, const char* what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], atol + rtol * std::fabs(want[i])) << what << " at " << i;
  }
}

}  // namespace gannet::testing
