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
#else
constexpr int kRows = 4, kMaxM = 2;  // 8 accumulators of 16 registers
inline vf load_w(const float* p) { return load(p); }
#endif

inline float widen(float w) { return w; }

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

// Packed bf16: a block of 8 rows, kMt activation rows at a time. Each 32-value group of a row is
// one 64-byte line: shifting each 32-bit lane left by 16 gives the even k's as f32, masking off
// the low half gives the odd k's; the reordered activations hold the matching even and odd x's.
#if defined(__AVX512F__)
constexpr int kBf16Mt = 2;
inline void widen_group(const uint16_t* p, vf& even, vf& odd) {
  __m512i v = _mm512_loadu_si512(reinterpret_cast<const void*>(p));
  even = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
  odd = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32((int)0xFFFF0000u)));
}
#else
constexpr int kBf16Mt = 1;
#endif

template <int MT>
inline void bf16_block(const float* Xr, int64_t Kp, const uint16_t* Wb, float* out) {
  constexpr int R = (int)kBf16BlockRows;
  vf acc[MT][R];
  for (int m = 0; m < MT; ++m)
    for (int r = 0; r < R; ++r) acc[m][r] = zero();
  for (int64_t k = 0; k < Kp; k += kBf16Group, Wb += R * kBf16Group) {
#if defined(__AVX512F__)
    vf xe[MT], xo[MT];
    for (int m = 0; m < MT; ++m) {
      xe[m] = load(Xr + m * Kp + k);
      xo[m] = load(Xr + m * Kp + k + 16);
    }
    for (int r = 0; r < R; ++r) {
      vf we, wo;
      widen_group(Wb + r * kBf16Group, we, wo);
      for (int m = 0; m < MT; ++m) acc[m][r] = fmadd(wo, xo[m], fmadd(we, xe[m], acc[m][r]));
    }
#else
    // Two 16-value halves per group; the even/odd x's of each half are the matching 8 of 16.
    for (int h = 0; h < 2; ++h) {
      vf xe = load(Xr + k + 8 * h), xo = load(Xr + k + 16 + 8 * h);
      for (int r = 0; r < R; ++r) {
        __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(Wb + r * kBf16Group + 16 * h));
        vf we = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
        vf wo = _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32((int)0xFFFF0000u)));
        acc[0][r] = fmadd(wo, xo, fmadd(we, xe, acc[0][r]));
      }
    }
#endif
  }
  for (int m = 0; m < MT; ++m)
    for (int r = 0; r < R; ++r) out[m * R + r] = reduce_add(acc[m][r]);
}

void skinny_matmul_bf16_range(const float* Xr, int64_t M, const uint16_t* W, int64_t K, const float* bias,
                              float* Y, int64_t ldy, Epilogue e, int64_t n_begin, int64_t n_end) {
  constexpr int64_t R = kBf16BlockRows;
  const int64_t Kp = (K + kBf16Group - 1) / kBf16Group * kBf16Group;
  float out[kBf16Mt * R];
  for (int64_t n = n_begin; n < n_end; n += R) {
    const uint16_t* Wb = W + n * Kp;
    const int64_t rows = n_end - n < R ? n_end - n : R;
    for (int64_t m0 = 0; m0 < M; m0 += kBf16Mt) {
      const int mt = (int)(M - m0 < kBf16Mt ? M - m0 : kBf16Mt);
      if (mt == kBf16Mt) bf16_block<kBf16Mt>(Xr + m0 * Kp, Kp, Wb, out);
      else bf16_block<1>(Xr + m0 * Kp, Kp, Wb, out);
      for (int m = 0; m < mt; ++m) {
        float* y = Y + (m0 + m) * ldy + n;
        for (int64_t r = 0; r < rows; ++r) {
          float v = out[m * R + r] + (bias ? bias[n + r] : 0.f);
          if (e == Epilogue::accumulate) y[r] += v;
          else y[r] = v;
        }
      }
    }
  }
  if (e == Epilogue::gelu)
    for (int64_t m = 0; m < M; ++m) gelu_forward(Y + m * ldy + n_begin, Y + m * ldy + n_begin, n_end - n_begin);
}

}  // namespace gannet::kernels::GANNET_ISA
