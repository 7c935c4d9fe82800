#include "gannet/kernels/low_bit_matmul.h"

#include <omp.h>

#include <algorithm>
#include <climits>
#include <cmath>

#include "gannet/core/cpu.h"
#include "gannet/core/error.h"

namespace gannet::kernels {

void check_low_bit_product(const QuantizedRows& A, const LowBitWeights& W, const char* what) {
  GANNET_CHECK(W.bits == 1 || W.bits == 2, what, ": ", W.bits, "-bit weights are not low-bit (1 or 2)");
  GANNET_CHECK(W.N > 0 && W.K > 0, what, ": empty weight matrix [", W.N, ", ", W.K, "]");
  GANNET_CHECK(W.group > 0 && W.group % kLowBitWordBits == 0 && W.padded_K % W.group == 0 && W.padded_K >= W.K &&
                   W.padded_K - W.K < W.group,
               what, ": group ", W.group, " and padded width ", W.padded_K, " do not fit input width ", W.K);
  GANNET_CHECK(W.group <= kMaxLowBitGroup, what, ": group ", W.group, " is wider than ", kMaxLowBitGroup,
               " columns (the int32 sums would overflow)");
  GANNET_CHECK(W.sign && W.scale && (W.bits == 1 || W.nonzero), what, ": weight planes or scales missing");
  GANNET_CHECK(A.K == W.K, what, ": activations have ", A.K, " columns, the weights ", W.K);
  GANNET_CHECK(A.M >= 0 && (A.M == 0 || (A.q && A.scale && A.ld >= A.K)), what, ": bad activation rows (M ", A.M,
               ", stride ", A.ld, ")");
}

namespace {
constexpr int64_t kColumnsPerStep = 16;  // the vector paths' tiles of output columns (8 or 16)

void low_bit_range(Isa isa, const QuantizedRows& A, const LowBitWeights& W, float* Y, int64_t ldy, int64_t b,
                   int64_t end) {
  if (isa == Isa::avx512 && cpu_has_avx512_vnni() && cpu_has_avx512_vbmi_gfni())
    avx512::low_bit_matmul_range(A, W, Y, ldy, b, end);
  else
    avx2::low_bit_matmul_range(A, W, Y, ldy, b, end);
}
}  // namespace

void low_bit_matmul(const QuantizedRows& A, const LowBitWeights& W, float* Y, int64_t ldy) {
  check_low_bit_product(A, W, "low-bit product");
  GANNET_CHECK(ldy >= W.N, "low-bit product: output stride ", ldy, " is less than ", W.N, " columns");
  GANNET_CHECK(W.N * W.groups_per_row() <= INT32_MAX, "low-bit product: ", W.N, " x ", W.groups_per_row(),
               " scales are more than the vector paths index");
  const Isa isa = best_isa();
  if (isa == Isa::scalar) return ref::low_bit_matmul(A, W, Y, ldy);
  if (A.M == 0) return;
  const int64_t work = A.M * W.N * W.padded_K;
  if (omp_in_parallel() || W.N <= kColumnsPerStep || work < (int64_t(1) << 18))
    return low_bit_range(isa, A, W, Y, ldy, 0, W.N);
#pragma omp parallel
  {
    // Contiguous ranges of whole steps: one weight stream per thread.
    const int64_t nth = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t steps = (W.N + kColumnsPerStep - 1) / kColumnsPerStep;
    const int64_t b = std::min(W.N, steps * t / nth * kColumnsPerStep);
    const int64_t end = std::min(W.N, steps * (t + 1) / nth * kColumnsPerStep);
    if (b < end) low_bit_range(isa, A, W, Y, ldy, b, end);
  }
}

namespace ref {

namespace {

// S for row n, group g of W and activation row a (columns [0, K)).
int32_t group_sum(const int8_t* a, const LowBitWeights& W, int64_t n, int64_t g) {
  const int64_t k0 = g * W.group, k1 = std::min(k0 + W.group, W.K);
  int32_t plus = 0, all = 0, minus = 0;
  for (int64_t j = k0 / kLowBitWordBits; j * kLowBitWordBits < k1; ++j) {
    const uint32_t s = W.word(W.sign, n, j);
    const uint32_t z = W.bits == 2 ? W.word(W.nonzero, n, j) : ~0u;
    const int64_t base = j * kLowBitWordBits, end = std::min(base + kLowBitWordBits, k1);
    for (int64_t k = base; k < end; ++k) {
      const uint32_t b = uint32_t(1) << (k - base);
      const int32_t x = a[k];
      all += x;
      if (s & b) plus += x;
      else if (z & b) minus += x;
    }
  }
  return W.bits == 1 ? 2 * plus - all : plus - minus;
}

}  // namespace

void low_bit_group_sums(const QuantizedRows& A, const LowBitWeights& W, int32_t* S) {
  check_low_bit_product(A, W, "low-bit product");
  const int64_t G = W.groups_per_row();
  for (int64_t m = 0; m < A.M; ++m)
    for (int64_t n = 0; n < W.N; ++n)
      for (int64_t g = 0; g < G; ++g) S[(m * W.N + n) * G + g] = group_sum(A.q + m * A.ld, W, n, g);
}

void low_bit_matmul(const QuantizedRows& A, const LowBitWeights& W, float* Y, int64_t ldy) {
  check_low_bit_product(A, W, "low-bit product");
  GANNET_CHECK(ldy >= W.N, "low-bit product: output stride ", ldy, " is less than ", W.N, " columns");
  const int64_t G = W.groups_per_row();
  for (int64_t m = 0; m < A.M; ++m) {
    const int8_t* a = A.q + m * A.ld;
    for (int64_t n = 0; n < W.N; ++n) {
      float acc = 0.f;
      for (int64_t g = 0; g < G; ++g) acc = std::fma((float)group_sum(a, W, n, g), W.scale[n * G + g], acc);
      Y[m * ldy + n] = acc * A.scale[m];
    }
  }
}

}  // namespace ref

}  // namespace gannet::kernels
