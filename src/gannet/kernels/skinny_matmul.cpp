#include "gannet/kernels/skinny_matmul.h"

#include <omp.h>

#include <algorithm>
#include <vector>

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
void range_f32(const float* X, int64_t ldx, int64_t M, const WT* W, int64_t K, const float* bias, float* Y,
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
  range_f32(X, ldx, M, W, K, bias, Y, ldy, e, n_begin, n_end);
}
void skinny_matmul_bf16_range(const float* Xr, int64_t M, const uint16_t* W, int64_t K, const float* bias,
                              float* Y, int64_t ldy, Epilogue e, int64_t n_begin, int64_t n_end) {
  // Undo both reorderings and compute plainly.
  const int64_t Kp = (K + kBf16Group - 1) / kBf16Group * kBf16Group, N = n_end;
  std::vector<float> x(M * K), w((n_end - n_begin) * K);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k) {
      int64_t g = k / kBf16Group, j = k % kBf16Group;
      x[m * K + k] = Xr[m * Kp + g * kBf16Group + (j % 2) * 16 + j / 2];
    }
  gannet::kernels::unpack_bf16_rows(W, N, K, n_begin, n_end - n_begin, w.data());
  range_f32(x.data(), K, M, w.data(), K, bias ? bias + n_begin : nullptr, Y + n_begin, ldy, e, 0, n_end - n_begin);
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
  // The reordered activations, in a buffer kept per thread (it only grows).
  thread_local std::vector<float> xr;
  const int64_t Kp = (K + kBf16Group - 1) / kBf16Group * kBf16Group;
  if ((int64_t)xr.size() < M * Kp) xr.resize(M * Kp);
  reorder_activations(X, ldx, M, K, xr.data());
  const float* Xr = xr.data();
  over_threads(M, N, K, [&](int64_t b, int64_t end) {
    switch (best_isa()) {
      case Isa::avx512: return avx512::skinny_matmul_bf16_range(Xr, M, W, K, bias, Y, ldy, e, b, end);
      case Isa::avx2: return avx2::skinny_matmul_bf16_range(Xr, M, W, K, bias, Y, ldy, e, b, end);
      default: return ref::skinny_matmul_bf16_range(Xr, M, W, K, bias, Y, ldy, e, b, end);
    }
  });
}

namespace {
int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
// Index of (row n, column k) in the packed layout.
inline int64_t packed_index(int64_t n, int64_t k, int64_t Kp) {
  return (n / kBf16BlockRows) * kBf16BlockRows * Kp + (k / kBf16Group) * kBf16BlockRows * kBf16Group +
         (n % kBf16BlockRows) * kBf16Group + k % kBf16Group;
}
}  // namespace

int64_t packed_bf16_size(int64_t N, int64_t K) { return round_up(N, kBf16BlockRows) * round_up(K, kBf16Group); }

void pack_bf16(const float* W, int64_t N, int64_t K, uint16_t* out) {
  const int64_t Np = round_up(N, kBf16BlockRows), Kp = round_up(K, kBf16Group);
#pragma omp parallel for schedule(static) if (Np * Kp > (1 << 16))
  for (int64_t n = 0; n < Np; ++n)
    for (int64_t k = 0; k < Kp; ++k)
      out[packed_index(n, k, Kp)] = (n < N && k < K) ? f32_to_bf16(W[n * K + k]) : uint16_t(0);
}

void unpack_bf16_rows(const uint16_t* packed, int64_t N, int64_t K, int64_t r0, int64_t rows, float* out) {
  GANNET_CHECK(r0 >= 0 && rows >= 0 && r0 + rows <= N, "unpack_bf16_rows: rows [", r0, ", ", r0 + rows,
               ") outside [0, ", N, ")");
  const int64_t Kp = round_up(K, kBf16Group);
#pragma omp parallel for schedule(static) if (rows * K > (1 << 16))
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t k = 0; k < K; ++k) out[i * K + k] = bf16_to_f32(packed[packed_index(r0 + i, k, Kp)]);
}

void reorder_activations(const float* X, int64_t ldx, int64_t M, int64_t K, float* out) {
  const int64_t Kp = round_up(K, kBf16Group);
  for (int64_t m = 0; m < M; ++m) {
    float* o = out + m * Kp;
    for (int64_t k = 0; k < Kp; ++k) {
      int64_t g = k / kBf16Group, j = k % kBf16Group;
      o[g * kBf16Group + (j % 2) * 16 + j / 2] = k < K ? X[m * ldx + k] : 0.f;
    }
  }
}

}  // namespace gannet::kernels
