#include "gannet/kernels/nm_sparse_matmul.h"

#include <cmath>

#include "gannet/core/error.h"

namespace gannet::kernels {

void check_nm_sparse_product(const QuantizedRows& A, const NmSparseWeights& W, const char* what) {
  GANNET_CHECK(W.m >= 2 && W.m <= 16 && W.n >= 1 && W.n < W.m, what, ": N:M pattern ", W.n, ":", W.m,
               " must keep 1 to M - 1 of every M, with M from 2 to 16");
  GANNET_CHECK(W.bits == 8 || W.bits == 4, what, ": ", W.bits, "-bit values (8 or 4)");
  GANNET_CHECK(W.N > 0 && W.K > 0 && W.K % W.m == 0 && W.group > 0 && W.group % W.m == 0 && W.K % W.group == 0,
               what, ": a [", W.N, ", ", W.K, "] matrix with groups of ", W.group, " does not fit runs of ", W.m);
  GANNET_CHECK(W.values && W.index && W.scale, what, ": kept values, positions or scales missing");
  GANNET_CHECK(A.K == W.K, what, ": activations have ", A.K, " columns, the weights ", W.K);
  GANNET_CHECK(A.M >= 0 && (A.M == 0 || (A.q && A.scale && A.ld >= A.K)), what, ": bad activation rows (M ", A.M,
               ", stride ", A.ld, ")");
}

namespace ref {

void nm_sparse_matmul(const QuantizedRows& A, const NmSparseWeights& W, const float* bias, float* Y, int64_t ldy) {
  check_nm_sparse_product(A, W, "N:M sparse product");
  GANNET_CHECK(ldy >= W.N, "N:M sparse product: output stride ", ldy, " is less than ", W.N, " columns");
  const int64_t G = W.groups_per_row(), kept_per_group = W.group / W.m * W.n;
  for (int64_t m = 0; m < A.M; ++m) {
    const int8_t* a = A.q + m * A.ld;
    for (int64_t r = 0; r < W.N; ++r) {
      float acc = 0.f;
      for (int64_t g = 0; g < G; ++g) {
        int32_t I = 0;
        for (int64_t j = g * kept_per_group; j < (g + 1) * kept_per_group; ++j)
          I += (int32_t)a[W.column(r, j)] * W.value(r, j);
        acc = std::fma((float)I, W.scale[r * G + g], acc);
      }
      Y[m * ldy + r] = std::fma(acc, A.scale[m], bias ? bias[r] : 0.f);
    }
  }
}

}  // namespace ref
}  // namespace gannet::kernels
