#include "gannet/kernels/skinny_matmul.h"

#include <omp.h>

#include <algorithm>

#include "gannet/core/dispatch.h"
#include "gannet/core/dtype.h"
#include "gannet/core/error.h"
#include "gannet/kernels/gelu.h"

namespace gannet::kernels {

namespace ref {
namespace {
template <class WT>
float weight(WT w) {
  if constexpr (sizeof(WT) == 2) return bf16_to_f32(w);
  else return w;
}

template <class WT>
void range(const float* X, int64_t ldx, int64_t M, const WT* W, int64_t K, const float* bias, float* Y,
           int64_t ldy, Epilogue e, int64_t n_begin, int64_t n_end) {
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = n_begin; n < n_end; ++n) {
      double s = bias ? bias[n] : 0.0;
      for (int64_t k = 0; k < K; ++k) s += (double)X[m * ldx + k] * weight(W[n * K + k]);
      float v = (float)s;
      float* y = Y + m * ldy + n;
      if (e == Epilogue::store) *y = v;
      else if (e == Epilogue::accumulate) *y += v;
      else gelu_forward(&v, y, 1);
    }
  }
}
}  // namespace

void skinny_matmul_range(const float* X, int64_t ldx, int64_t M, const float* W, int64_t K, const float* bias,
                         float* Y, int64_t ldy, Epilogue e, int64_t n_begin, int64_t n_end) {
  range(X, ldx, M, W, K, bias, Y, ldy, e, n_begin, n_end);
}
void skinny_matmul_bf16_range(const float* X, int64_t ldx, int64_t M, const uint16_t* W, int64_t K,
                              const float* bias, float* Y, int64_t ldy, Epilogue e, int64_t n_begin,
                              int64_t n_end) {
  range(X, ldx, M, W, K, bias, Y, ldy, e, n_begin, n_end);
}
}  // namespace ref

namespace {
void check(int64_t ldx, int64_t M, int64_t N, int64_t K, int64_t ldy) {
  GANNET_CHECK(M >= 0 && N >= 0 && K >= 0, "skinny_matmul: negative size M=", M, " N=", N, " K=", K);
  GANNET_CHECK(ldx >= K && ldy >= N, "skinny_matmul: ldx=", ldx, " < K=", K, " or ldy=", ldy, " < N=", N);
}

// Splits [0, N) into one contiguous range per thread (multiples of 16 rows, so that each thread
// streams its own block of W) and runs body(begin, end) on each.
template <class Body>
void over_threads(int64_t M, int64_t N, int64_t K, Body body) {
  // Small products are not worth waking the other threads for.
  if (omp_in_parallel() || N < 64 || M * N * K < (int64_t(1) << 16)) return body(int64_t(0), N);
#pragma omp parallel
  {
    int64_t nth = omp_get_num_threads(), t = omp_get_thread_num();
    int64_t chunk = ((N + nth - 1) / nth + 15) / 16 * 16;
    int64_t b = std::min(N, t * chunk), e = std::min(N, b + chunk);
    if (b < e) body(b, e);
  }
}
}  // namespace

void skinny_matmul(const float* X, int64_t ldx, int64_t M, const float* W, int64_t N, int64_t K,
                   const float* bias, float* Y, int64_t ldy, Epilogue e) {
  check(ldx, M, N, K, ldy);
  if (M == 0) return;
  over_threads(M, N, K, [&](int64_t b, int64_t end) {
    switch (best_isa()) {
      case Isa::avx512: return avx512::skinny_matmul_range(X, ldx, M, W, K, bias, Y, ldy, e, b, end);
      case Isa::avx2: return avx2::skinny_matmul_range(X, ldx, M, W, K, bias, Y, ldy, e, b, end);
      default: return ref::skinny_matmul_range(X, ldx, M, W, K, bias, Y, ldy, e, b, end);
    }
  });
}

void skinny_matmul_bf16(const float* X, int64_t ldx, int64_t M, const uint16_t* W, int64_t N, int64_t K,
                        const float* bias, float* Y, int64_t ldy, Epilogue e) {
  check(ldx, M, N, K, ldy);
  if (M == 0) return;
  over_threads(M, N, K, [&](int64_t b, int64_t end) {
    switch (best_isa()) {
      case Isa::avx512: return avx512::skinny_matmul_bf16_range(X, ldx, M, W, K, bias, Y, ldy, e, b, end);
      case Isa::avx2: return avx2::skinny_matmul_bf16_range(X, ldx, M, W, K, bias, Y, ldy, e, b, end);
      default: return ref::skinny_matmul_bf16_range(X, ldx, M, W, K, bias, Y, ldy, e, b, end);
    }
  });
}

}  // namespace gannet::kernels
