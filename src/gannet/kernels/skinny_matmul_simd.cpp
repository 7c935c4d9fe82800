// Vector bodies of skinny_matmul; compiled once per ISA (see core/simd.h).
//
// A block of weight rows is read once, one 64-byte group at a time, and multiplied with up to MT
// activation rows (MT x rows accumulators stay in registers); every accumulator sees its k's in
// the same order, so results do not depend on M or on how the activation rows are tiled.
#include "gannet/core/simd.h"
#include "gannet/kernels/gelu.h"
#include "gannet/kernels/skinny_matmul.h"

namespace gannet::kernels::GANNET_ISA {
using namespace gannet::simd;

namespace {
constexpr int kGroupBytes = 64;
constexpr int kAheadBytes = 4096;  // single-row prefetch distance (see block())

#if defined(__AVX512F__)
constexpr int kMaxMtF32 = 4, kMaxMtBf16 = 2;  // 16 accumulators of 32 registers
#else
constexpr int kMaxMtF32 = 2, kMaxMtBf16 = 1;  // 8 accumulators of 16 registers
#endif

// One group of 16 f32 weights of R rows (W 64-byte apart per row) against MT activation rows.
template <int R, int MT>
inline void group_f32(const float* Xp, int64_t Kp, int64_t k, const float* Wg, vf (&acc)[MT][R]) {
  for (int h = 0; h < 64 / (int)sizeof(float) / W; ++h) {  // 1 vector per group (AVX-512), 2 (AVX2)
    vf x[MT];
    for (int m = 0; m < MT; ++m) x[m] = load(Xp + m * Kp + k + h * W);
    for (int r = 0; r < R; ++r) {
      vf w = load(Wg + r * 16 + h * W);
      for (int m = 0; m < MT; ++m) acc[m][r] = fmadd(w, x[m], acc[m][r]);
    }
  }
}

// One group of 32 bf16 weights of R rows: the even k's are the high halves of the 32-bit lanes
// shifted up, the odd k's the lanes with the low half masked off; the prepared activations hold
// the 16 even x's, then the 16 odd ones.
template <int R, int MT>
inline void group_bf16(const float* Xp, int64_t Kp, int64_t k, const uint16_t* Wg, vf (&acc)[MT][R]) {
#if defined(__AVX512F__)
  const __m512i hi = _mm512_set1_epi32((int)0xFFFF0000u);
  vf xe[MT], xo[MT];
  for (int m = 0; m < MT; ++m) {
    xe[m] = load(Xp + m * Kp + k);
    xo[m] = load(Xp + m * Kp + k + 16);
  }
  for (int r = 0; r < R; ++r) {
    __m512i v = _mm512_loadu_si512(reinterpret_cast<const void*>(Wg + r * 32));
    vf we = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
    vf wo = _mm512_castsi512_ps(_mm512_and_si512(v, hi));
    for (int m = 0; m < MT; ++m) acc[m][r] = fmadd(wo, xo[m], fmadd(we, xe[m], acc[m][r]));
  }
#else
  // Two 16-value halves; the even/odd x's of half h are entries 8h..8h+7 of the 16 even/odd ones.
  const __m256i hi = _mm256_set1_epi32((int)0xFFFF0000u);
  for (int h = 0; h < 2; ++h) {
    vf xe[MT], xo[MT];
    for (int m = 0; m < MT; ++m) {
      xe[m] = load(Xp + m * Kp + k + 8 * h);
      xo[m] = load(Xp + m * Kp + k + 16 + 8 * h);
    }
    for (int r = 0; r < R; ++r) {
      __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(Wg + r * 32 + 16 * h));
      vf we = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
      vf wo = _mm256_castsi256_ps(_mm256_and_si256(v, hi));
      for (int m = 0; m < MT; ++m) acc[m][r] = fmadd(wo, xo[m], fmadd(we, xe[m], acc[m][r]));
    }
  }
#endif
}

// out[m * R + r] = sum_k Xp[m, k] * W[block row r, k] for m < MT.
template <class T, int R, int MT>
inline void block(const float* Xp, int64_t Kp, const T* Wb, float* out) {
  constexpr int G = kGroupBytes / (int)sizeof(T);
  vf acc[MT][R];
  for (int m = 0; m < MT; ++m)
    for (int r = 0; r < R; ++r) acc[m][r] = zero();
  for (int64_t k = 0; k < Kp; k += G, Wb += R * G) {
    // With several activation rows the loop runs slower than memory and the hardware prefetcher
    // falls behind; asking 16 groups ahead helped there (measured). A single row asks for L2 a
    // fixed distance ahead instead: on the AMD machine any prefetch at one row was slower, on the Intel
    // machine (Emerald Rapids, KVM) 4 KiB ahead into L2 took bf16 from 12.8-14.0 to 9.6-11.0 ms
    // per token's matrices and f32 from 18.2-18.8 to 17.7-18.2 (T0 hints, or 2 KiB: less gain).
    if constexpr (MT > 1) {
      for (int r = 0; r < R; ++r) _mm_prefetch(reinterpret_cast<const char*>(Wb + R * G * 16 + r * G), _MM_HINT_T0);
    } else {
      for (int r = 0; r < R; ++r) _mm_prefetch(reinterpret_cast<const char*>(Wb + r * G) + kAheadBytes, _MM_HINT_T1);
    }
    if constexpr (sizeof(T) == 4) group_f32<R, MT>(Xp, Kp, k, Wb, acc);
    else group_bf16<R, MT>(Xp, Kp, k, Wb, acc);
  }
  for (int m = 0; m < MT; ++m)
    for (int r = 0; r < R; ++r) out[m * R + r] = reduce_add(acc[m][r]);
}

template <class T, int R, int MaxMt>
void range(const float* Xp, int64_t M, const T* W, int64_t K, const float* bias, float* Y, int64_t ldy, Epilogue e,
           int64_t n_begin, int64_t n_end) {
  constexpr int G = kGroupBytes / (int)sizeof(T);
  const int64_t Kp = (K + G - 1) / G * G;
  float out[MaxMt * R];
  for (int64_t n = n_begin; n < n_end; n += R) {
    const T* Wb = W + n * Kp;
    const int64_t rows = n_end - n < R ? n_end - n : R;
    for (int64_t m0 = 0; m0 < M; m0 += MaxMt) {
      const int mt = (int)(M - m0 < MaxMt ? M - m0 : MaxMt);
      const float* Xm = Xp + m0 * Kp;
      switch (mt) {
        case 1: block<T, R, 1>(Xm, Kp, Wb, out); break;
#if defined(__AVX512F__)
        case 2: block<T, R, (MaxMt >= 2 ? 2 : 1)>(Xm, Kp, Wb, out); break;
        case 3: block<T, R, (MaxMt >= 3 ? 3 : 1)>(Xm, Kp, Wb, out); break;
#endif
        default: block<T, R, MaxMt>(Xm, Kp, Wb, out); break;
      }
      for (int m = 0; m < mt; ++m) {
        float* y = Y + (m0 + m) * ldy + n;
        for (int64_t r = 0; r < rows; ++r) {
          const float v = out[m * R + r] + (bias ? bias[n + r] : 0.f);
          if (e == Epilogue::accumulate) y[r] += v;
          else y[r] = v;
        }
      }
    }
  }
  // GELU over the finished range, vectorized, while it is still in cache.
  if (e == Epilogue::gelu)
    for (int64_t m = 0; m < M; ++m) gelu_forward(Y + m * ldy + n_begin, Y + m * ldy + n_begin, n_end - n_begin);
}
}  // namespace

void skinny_matmul_range(const float* Xp, int64_t M, const PackedMatrix& W, const float* bias, float* Y,
                         int64_t ldy, Epilogue e, int64_t n_begin, int64_t n_end) {
  if (W.type == PackedType::f32)
    range<float, 4, kMaxMtF32>(Xp, M, static_cast<const float*>(W.data), W.K, bias, Y, ldy, e, n_begin, n_end);
  else
    range<uint16_t, 8, kMaxMtBf16>(Xp, M, static_cast<const uint16_t*>(W.data), W.K, bias, Y, ldy, e, n_begin,
                                   n_end);
}

}  // namespace gannet::kernels::GANNET_ISA
