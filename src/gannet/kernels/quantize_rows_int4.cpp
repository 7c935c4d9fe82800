#include "gannet/kernels/quantize_rows_int4.h"

#include <emmintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "gannet/core/dispatch.h"
#include "gannet/core/error.h"

namespace gannet::kernels {

Int4RowScale int4_row_scale(float lo, float hi, bool asymmetric, float static_scale) {
  if (static_scale > 0.f) return {static_scale, 1.f / static_scale, 8};
  lo = std::min(lo, 0.f);
  hi = std::max(hi, 0.f);
  if (!asymmetric) {
    const float amax = std::max(-lo, hi);
    return {amax / 7.f, amax > 0.f ? 7.f / amax : 0.f, 8};
  }
  const float range = hi - lo;
  const float inv = range > 0.f ? 15.f / range : 0.f;
  const float z = std::nearbyint(-lo * inv);
  return {range / 15.f, inv, (int)std::min(std::max(z, 0.f), 15.f)};
}

namespace ref {
namespace {
// One row's codes of K values and Kp - K padding codes z, two per byte.
void row_codes(const float* x, int64_t K, int64_t Kp, float inv, int z, bool asymmetric, uint8_t* out) {
  const float cmin = asymmetric ? 0.f : 1.f;
  std::vector<uint8_t> c(Kp, (uint8_t)z);
  for (int64_t k = 0; k < K; ++k)
    c[k] = (uint8_t)std::nearbyint(std::min(std::max(std::fma(x[k], inv, (float)z), cmin), 15.f));
  for (int64_t j = 0; j < Kp / 2; ++j) out[j] = (uint8_t)(c[2 * j] | c[2 * j + 1] << 4);
}
}  // namespace

void rows_min_max(const float* X, int64_t ldx, int64_t M, int64_t K, float* lo, float* hi) {
  for (int64_t m = 0; m < M; ++m) {
    const float* x = X + m * ldx;
    lo[m] = hi[m] = 0.f;
    for (int64_t k = 0; k < K; ++k) {
      lo[m] = std::min(lo[m], x[k]);
      hi[m] = std::max(hi[m], x[k]);
    }
  }
}

void quantize_rows_int4_with(const float* X, int64_t ldx, int64_t M, int64_t K, int64_t Kp, bool asymmetric,
                             const float* inv, const uint8_t* zeros, uint8_t* q, int64_t ldq) {
  for (int64_t m = 0; m < M; ++m) row_codes(X + m * ldx, K, Kp, inv[m], zeros ? zeros[m] : 8, asymmetric, q + m * ldq);
}

void quantize_rows_int4(const float* X, int64_t ldx, int64_t M, int64_t K, int64_t Kp, bool asymmetric,
                        float static_scale, uint8_t* q, int64_t ldq, float* scales, uint8_t* zeros) {
  for (int64_t m = 0; m < M; ++m) {
    float lo = 0.f, hi = 0.f;
    if (static_scale <= 0.f) rows_min_max(X + m * ldx, ldx, 1, K, &lo, &hi);
    const Int4RowScale s = int4_row_scale(lo, hi, asymmetric, static_scale);
    scales[m] = s.scale;
    if (zeros) zeros[m] = (uint8_t)s.zero;
    row_codes(X + m * ldx, K, Kp, s.inv, s.zero, asymmetric, q + m * ldq);
  }
}
}  // namespace ref

void quantize_rows_int4(const float* X, int64_t ldx, int64_t M, int64_t K, int64_t Kp, bool asymmetric,
                        float static_scale, uint8_t* q, int64_t ldq, float* scales, uint8_t* zeros) {
  GANNET_CHECK(M >= 0 && K >= 0 && Kp >= K && Kp % 2 == 0 && ldx >= K && 2 * ldq >= Kp,
               "quantize_rows_int4: bad sizes M=", M, " K=", K, " Kp=", Kp, " ldx=", ldx, " ldq=", ldq);
  GANNET_CHECK(std::isfinite(static_scale) && static_scale >= 0.f, "quantize_rows_int4: static scale ",
               static_scale, " is not a finite non-negative number");
  GANNET_CHECK(!(asymmetric && static_scale > 0.f),
               "quantize_rows_int4: a static scale is for symmetric rows only (asymmetric rows are dynamic)");
  GANNET_CHECK(!asymmetric || zeros, "quantize_rows_int4: asymmetric rows need their zero points");
  auto rows = [&](int64_t m0, int64_t m1) {
    auto body = [&](const float* x, uint8_t* qq, float* s, uint8_t* z) {
      GANNET_DISPATCH(quantize_rows_int4, x, ldx, m1 - m0, K, Kp, asymmetric, static_scale, qq, ldq, s, z);
    };
    body(X + m0 * ldx, q + m0 * ldq, scales + m0, zeros ? zeros + m0 : nullptr);
  };
  if (omp_in_parallel() || M < 2 || M * K < (int64_t(1) << 16)) return rows(0, M);
#pragma omp parallel
  {
    const int64_t nth = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t chunk = (M + nth - 1) / nth, b = std::min(M, t * chunk), e = std::min(M, b + chunk);
    if (b < e) rows(b, e);
  }
}

void rows_min_max(const float* X, int64_t ldx, int64_t M, int64_t K, float* lo, float* hi) {
  GANNET_CHECK(M >= 0 && K >= 0 && ldx >= K, "rows_min_max: bad sizes M=", M, " K=", K, " ldx=", ldx);
  GANNET_DISPATCH(rows_min_max, X, ldx, M, K, lo, hi);
}

void quantize_rows_int4_with(const float* X, int64_t ldx, int64_t M, int64_t K, int64_t Kp, bool asymmetric,
                             const float* inv, const uint8_t* zeros, uint8_t* q, int64_t ldq) {
  GANNET_CHECK(M >= 0 && K >= 0 && Kp >= K && Kp % 2 == 0 && ldx >= K && 2 * ldq >= Kp,
               "quantize_rows_int4_with: bad sizes M=", M, " K=", K, " Kp=", Kp, " ldx=", ldx, " ldq=", ldq);
  GANNET_DISPATCH(quantize_rows_int4_with, X, ldx, M, K, Kp, asymmetric, inv, zeros, q, ldq);
}

void widen_int4_rows(const QuantizedRows& A, int64_t m_begin, int64_t m_end, int8_t* out, int64_t ldo) {
  GANNET_CHECK(A.bits == 4 && A.K % 2 == 0, "widen_int4_rows: needs 4-bit rows of even width");
  const uint8_t* q = reinterpret_cast<const uint8_t*>(A.q);
  const __m128i nib = _mm_set1_epi8(0x0F);
  for (int64_t m = m_begin; m < m_end; ++m) {
    const uint8_t* in = q + m * A.ld;
    int8_t* o = out + (m - m_begin) * ldo;
    const int z = A.zero ? A.zero[m] : 8;
    const __m128i zv = _mm_set1_epi8((char)z);
    int64_t j = 0;
    for (; j + 16 <= A.K / 2; j += 16) {  // SSE2 (every x86-64): 16 bytes to 32 values
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + j));
      const __m128i lo = _mm_and_si128(b, nib), hi = _mm_and_si128(_mm_srli_epi16(b, 4), nib);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 2 * j), _mm_sub_epi8(_mm_unpacklo_epi8(lo, hi), zv));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 2 * j + 16), _mm_sub_epi8(_mm_unpackhi_epi8(lo, hi), zv));
    }
    for (; j < A.K / 2; ++j) {
      o[2 * j] = (int8_t)((in[j] & 0x0F) - z);
      o[2 * j + 1] = (int8_t)((in[j] >> 4) - z);
    }
  }
}

}  // namespace gannet::kernels
