// Vector bodies of skinny_matmul; compiled once per ISA (see core/simd.h).
//
// A block of R weight rows is read once per pass and multiplied with up to MT activation rows at a
// time (R*MT accumulators stay in registers); every accumulator sees its k's in the same order, so
// results do not depend on M or on how the rows are blocked.
#include "gannet/core/simd.h"
#include "gannet/kernels/gelu.h"
#include "gannet/kernels/skinny_matmul.h"

namespace gannet::kernels::GANNET_ISA {
using namespace gannet::simd;

namespace {
#if defined(__AVX512F__)
constexpr int kRows = 4, kMaxM = 4;  // 16 accumulators of 32 registers
inline vf load_w(const float* p) { return load(p); }
inline vf load_w(const uint16_t* p) {
  __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
#else
constexpr int kRows = 4, kMaxM = 2;  // 8 accumulators of 16 registers
inline vf load_w(const float* p) { return load(p); }
inline vf load_w(const uint16_t* p) {
  __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
#endif

inline float widen(float w) { return w; }
inline float widen(uint16_t w) {
  uint32_t u = uint32_t(w) << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}

// out[m * R + r] = sum_k X[m, k] * W[r, k] for m < MT, r < R.
template <int R, int MT, class WT>
inline void block(const float* X, int64_t ldx, const WT* Wr, int64_t K, float* out) {
  vf acc[MT][R];
  for (int m = 0; m < MT; ++m)
    for (int r = 0; r < R; ++r) acc[m][r] = zero();
  const int64_t kv = K - K % W;
  for (int64_t k = 0; k < kv; k += W) {
    vf w[R];
    for (int r = 0; r < R; ++r) w[r] = load_w(Wr + r * K + k);
    for (int m = 0; m < MT; ++m) {
      vf x = load(X + m * ldx + k);
      for (int r = 0; r < R; ++r) acc[m][r] = fmadd(w[r], x, acc[m][r]);
    }
  }
  for (int m = 0; m < MT; ++m) {
    for (int r = 0; r < R; ++r) {
      float s = reduce_add(acc[m][r]);
      for (int64_t k = kv; k < K; ++k) s += X[m * ldx + k] * widen(Wr[r * K + k]);
      out[m * R + r] = s;
    }
  }
}

template <int R, class WT>
inline void rows_block(const float* X, int64_t ldx, int64_t M, const WT* Wr, int64_t K, const float* bias,
                       float* Y, int64_t ldy, Epilogue e, int64_t n) {
  float out[kMaxM * R];
  for (int64_t m0 = 0; m0 < M; m0 += kMaxM) {
    const float* Xm = X + m0 * ldx;
    int mt = (int)(M - m0 < kMaxM ? M - m0 : kMaxM);
    switch (mt) {
      case 1: block<R, 1>(Xm, ldx, Wr, K, out); break;
#if defined(__AVX512F__)
      case 2: block<R, 2>(Xm, ldx, Wr, K, out); break;
      case 3: block<R, 3>(Xm, ldx, Wr, K, out); break;
      default: block<R, 4>(Xm, ldx, Wr, K, out); break;
#else
      default: block<R, 2>(Xm, ldx, Wr, K, out); break;
#endif
    }
    for (int m = 0; m < mt; ++m) {
      float* y = Y + (m0 + m) * ldy + n;
      for (int r = 0; r < R; ++r) {
        float v = out[m * R + r] + (bias ? bias[n + r] : 0.f);
        if (e == Epilogue::accumulate) y[r] += v;
        else y[r] = v;
      }
    }
  }
}

template <class WT>
void range(const float* X, int64_t ldx, int64_t M, const WT* Wt, int64_t K, const float* bias, float* Y,
           int64_t ldy, Epilogue e, int64_t n_begin, int64_t n_end) {
  int64_t n = n_begin;
  for (; n + kRows <= n_end; n += kRows) rows_block<kRows>(X, ldx, M, Wt + n * K, K, bias, Y, ldy, e, n);
  for (; n < n_end; ++n) rows_block<1>(X, ldx, M, Wt + n * K, K, bias, Y, ldy, e, n);
  // GELU over the finished range, vectorized, while it is still in cache.
  if (e == Epilogue::gelu)
    for (int64_t m = 0; m < M; ++m) gelu_forward(Y + m * ldy + n_begin, Y + m * ldy + n_begin, n_end - n_begin);
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

}  // namespace gannet::kernels::GANNET_ISA
