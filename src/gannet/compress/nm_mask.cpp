#include "gannet/compress/nm_mask.h"

#include <cmath>

#include "gannet/core/error.h"

namespace gannet::compress {

namespace {

void check_nm_input(const float* W, int64_t N, int64_t K, const NmPattern& p) {
  p.validate("N:M sparsity");
  GANNET_CHECK(N > 0 && K > 0 && K % p.m == 0, "N:M sparsity: a [", N, ", ", K, "] matrix does not split into runs of ",
               p.m, " input columns");
  for (int64_t i = 0; i < N * K; ++i)
    GANNET_CHECK(std::isfinite(W[i]), "N:M sparsity: weight ", i / K, ", ", i % K, " is not finite");
}

// Marks the n largest |w| of one run w[0, m) in keep[0, m): selection by rank, ties to the lower
// column (an entry is kept when fewer than n entries beat it).
void mask_run(const float* w, int n, int m, uint8_t* keep) {
  for (int i = 0; i < m; ++i) {
    const float a = std::fabs(w[i]);
    int beaten_by = 0;
    for (int j = 0; j < m; ++j) {
      const float b = std::fabs(w[j]);
      beaten_by += (b > a) || (b == a && j < i);
    }
    keep[i] = beaten_by < n;
  }
}

}  // namespace

std::vector<uint8_t> nm_mask(const float* W, int64_t N, int64_t K, const NmPattern& p) {
  check_nm_input(W, N, K, p);
  std::vector<uint8_t> mask((size_t)(N * K));
  for (int64_t i = 0; i < N * K; i += p.m) mask_run(W + i, p.n, p.m, mask.data() + i);
  return mask;
}

void nm_project(float* W, int64_t N, int64_t K, const NmPattern& p) {
  const std::vector<uint8_t> mask = nm_mask(W, N, K, p);
  for (int64_t i = 0; i < N * K; ++i)
    if (!mask[(size_t)i]) W[i] = 0.f;
}

bool satisfies_nm(const float* W, int64_t N, int64_t K, const NmPattern& p) {
  p.validate("N:M sparsity");
  if (K % p.m != 0) return false;
  for (int64_t i = 0; i < N * K; i += p.m) {
    int nonzero = 0;
    for (int j = 0; j < p.m; ++j) nonzero += W[i + j] != 0.f;
    if (nonzero > p.n) return false;
  }
  return true;
}

}  // namespace gannet::compress
