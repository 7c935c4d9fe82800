// Helpers for kernel tests: random data, the ISAs this CPU can run, and closeness checks.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
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

// The vector ISAs this CPU supports (the scalar reference is always compared against).
inline std::vector<Isa> vector_isas() {
  std::vector<Isa> out;
  if (cpu_has(Isa::avx2)) out.push_back(Isa::avx2);
  if (cpu_has(Isa::avx512)) out.push_back(Isa::avx512);
  return out;
}

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
