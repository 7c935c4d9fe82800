#include "gannet/kernels/skinny_matmul.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "gannet/core/dispatch.h"
#include "gannet/core/dtype.h"
#include "gannet/core/error.h"
#include "gannet/core/round_up.h"
#include "gannet/kernels/gelu.h"

namespace gannet::kernels {

namespace {

// Index of (row n, column k) in the packed layout.
inline int64_t packed_index(int64_t n, int64_t k, int64_t Kp, int64_t R, int64_t G) {
  return (n / R) * R * Kp + (k / G) * R * G + (n % R) * G + k % G;
}

// Where column k of a prepared activation row lives.
inline int64_t prepared_index(PackedType t, int64_t k) {
  if (t == PackedType::f32) return k;
  const int64_t g = k / 32, j = k % 32;
  return g * 32 + (j % 2) * 16 + j / 2;
}
}  // namespace

int64_t packed_block_rows(PackedType t) { return t == PackedType::f32 ? 4 : 8; }
int64_t packed_group(PackedType t) { return t == PackedType::f32 ? 16 : 32; }

int64_t packed_size(PackedType t, int64_t N, int64_t K) {
  return round_up(N, packed_block_rows(t)) * round_up(K, packed_group(t));
}

void pack_weights(PackedType t, const float* W, int64_t N, int64_t K, void* out) {
  const int64_t R = packed_block_rows(t), G = packed_group(t), Np = round_up(N, R), Kp = round_up(K, G);
#pragma omp parallel for schedule(static) if (Np * Kp > (1 << 16))
  for (int64_t n = 0; n < Np; ++n) {
    for (int64_t k = 0; k < Kp; ++k) {
      const float v = (n < N && k < K) ? W[n * K + k] : 0.f;
      const int64_t i = packed_index(n, k, Kp, R, G);
      if (t == PackedType::f32) static_cast<float*>(out)[i] = v;
      else static_cast<uint16_t*>(out)[i] = f32_to_bf16(v);
    }
  }
}

void unpack_rows(const PackedMatrix& W, int64_t r0, int64_t rows, float* out) {
  GANNET_CHECK(r0 >= 0 && rows >= 0 && r0 + rows <= W.N, "unpack_rows: rows [", r0, ", ", r0 + rows,
               ") outside [0, ", W.N, ")");
  const int64_t R = packed_block_rows(W.type), G = packed_group(W.type), Kp = round_up(W.K, G), K = W.K;
  // Row n's groups are G contiguous values each, R * G apart.
#pragma omp parallel for schedule(static) if (rows * K > (1 << 16))
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t n = r0 + i, first = (n / R) * R * Kp + (n % R) * G;
    float* o = out + i * K;
    for (int64_t k0 = 0; k0 < K; k0 += G) {
      const int64_t count = std::min(G, K - k0), src = first + (k0 / G) * R * G;
      if (W.type == PackedType::f32) {
        std::memcpy(o + k0, static_cast<const float*>(W.data) + src, count * sizeof(float));
      } else {
        const uint16_t* s = static_cast<const uint16_t*>(W.data) + src;
        for (int64_t j = 0; j < count; ++j) o[k0 + j] = bf16_to_f32(s[j]);
      }
    }
  }
}

void prepare_activations(PackedType t, const float* X, int64_t ldx, int64_t M, int64_t K, float* out) {
  const int64_t G = packed_group(t), Kp = round_up(K, G);
  for (int64_t m = 0; m < M; ++m) {
    const float* x = X + m * ldx;
    float* o = out + m * Kp;
    if (t == PackedType::f32) {
      std::memcpy(o, x, K * sizeof(float));
      std::fill(o + K, o + Kp, 0.f);
      continue;
    }
    const int64_t whole = K / 32 * 32;
    for (int64_t g = 0; g < whole; g += 32)
      for (int64_t i = 0; i < 16; ++i) {
        o[g + i] = x[g + 2 * i];
        o[g + 16 + i] = x[g + 2 * i + 1];
      }
    for (int64_t k = whole; k < Kp; ++k) o[prepared_index(t, k)] = k < K ? x[k] : 0.f;
  }
}

namespace ref {
void skinny_matmul_range(const float* Xp, int64_t M, const PackedMatrix& W, const float* bias, float* Y,
                         int64_t ldy, Epilogue e, int64_t n_begin, int64_t n_end) {
  const int64_t K = W.K, Kp = round_up(K, packed_group(W.type));
  std::vector<float> w((n_end - n_begin) * K);
  unpack_rows(W, n_begin, n_end - n_begin, w.data());
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = n_begin; n < n_end; ++n) {
      double s = bias ? bias[n] : 0.0;
      for (int64_t k = 0; k < K; ++k)
        s += (double)Xp[m * Kp + prepared_index(W.type, k)] * w[(n - n_begin) * K + k];
      float v = (float)s;
      float* y = Y + m * ldy + n;
      if (e == Epilogue::store) *y = v;
      else if (e == Epilogue::accumulate) *y += v;
      else gelu_forward(&v, y, 1);
    }
  }
}
}  // namespace ref

void skinny_matmul(const float* X, int64_t ldx, int64_t M, const PackedMatrix& W, const float* bias, float* Y,
                   int64_t ldy, Epilogue e) {
  const int64_t N = W.N, K = W.K;
  GANNET_CHECK(M >= 0 && N >= 0 && K >= 0, "skinny_matmul: negative size M=", M, " N=", N, " K=", K);
  GANNET_CHECK(ldx >= K && ldy >= N, "skinny_matmul: ldx=", ldx, " < K=", K, " or ldy=", ldy, " < N=", N);
  if (M == 0 || N == 0) return;
  // f32 rows whose length is already a whole number of groups are read in place; otherwise the
  // prepared copy lives in a buffer kept per thread (it only grows).
  const int64_t Kp = round_up(K, packed_group(W.type));
  const float* Xp = X;
  if (!(W.type == PackedType::f32 && K == Kp && (ldx == K || M == 1))) {
    thread_local std::vector<float> buf;
    if ((int64_t)buf.size() < M * Kp) buf.resize(M * Kp);
    prepare_activations(W.type, X, ldx, M, K, buf.data());
    Xp = buf.data();
  }
  auto body = [&](int64_t b, int64_t end) {
    switch (best_isa()) {
      case Isa::avx512: return avx512::skinny_matmul_range(Xp, M, W, bias, Y, ldy, e, b, end);
      case Isa::avx2: return avx2::skinny_matmul_range(Xp, M, W, bias, Y, ldy, e, b, end);
      default: return ref::skinny_matmul_range(Xp, M, W, bias, Y, ldy, e, b, end);
    }
  };
  // Small products are not worth waking the other threads for.
  if (omp_in_parallel() || N < 64 || M * N * K < (int64_t(1) << 16)) return body(0, N);
  // One contiguous range of rows per thread (whole blocks; 16 rows is a multiple of both), so that
  // each thread streams its own part of W.
#pragma omp parallel
  {
    const int64_t nth = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t chunk = round_up((N + nth - 1) / nth, 16);
    const int64_t b = std::min(N, t * chunk), end = std::min(N, b + chunk);
    if (b < end) body(b, end);
  }
}

}  // namespace gannet::kernels
