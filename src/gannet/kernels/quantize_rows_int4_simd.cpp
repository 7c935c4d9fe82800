// Vector token-wise int4 activation quantization; compiled once per ISA (see core/simd.h). Per row:
// the minimum and maximum (skipped with a static scale), the codes in a row buffer (scale, round to
// nearest even, add the zero point, clamp, narrow), then two codes per byte.
#include <algorithm>
#include <vector>

#include "gannet/core/simd.h"
#include "gannet/kernels/quantize_rows_int4.h"

namespace gannet::kernels::GANNET_ISA {
using namespace gannet::simd;

namespace {
// The codes rint(clamp(fma(x, inv, z), cmin, 15)) as floats; the conversion rounds them.
inline vf code_values(vf x, vf inv, vf z, vf cmin) { return min(max(fmadd(x, inv, z), cmin), set1(15.f)); }

// n codes as bytes at c (n <= W).
inline void put_codes(uint8_t* c, vf x, vf inv, vf z, vf cmin, int n) {
  const vf v = code_values(x, inv, z, cmin);
#if defined(__AVX512F__)
  _mm512_mask_cvtepi32_storeu_epi8(c, tail_mask(n), _mm512_cvtps_epi32(v));
#else
  const __m256i i = _mm256_cvtps_epi32(v);
  const __m128i p16 = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
  const __m128i p8 = _mm_packus_epi16(p16, p16);
  alignas(16) uint8_t t[16];
  _mm_store_si128(reinterpret_cast<__m128i*>(t), p8);
  for (int j = 0; j < n; ++j) c[j] = t[j];
#endif
}

// out[j] = c[2j] | c[2j + 1] << 4 for j < bytes; c holds a multiple of 2 W bytes past the last one
// read (the caller's buffer is padded).
inline void pair_codes(const uint8_t* c, int64_t bytes, uint8_t* out) {
  int64_t j = 0;
#if defined(__AVX512F__)
  // 16-bit lanes hold c_even | c_odd << 8; (w | w >> 4) keeps c_even | c_odd << 4 in the low byte.
  for (; j + 32 <= bytes; j += 32) {
    const __m512i w = _mm512_loadu_si512(c + 2 * j);
    const __m512i t = _mm512_or_si512(w, _mm512_srli_epi16(w, 4));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j), _mm512_cvtepi16_epi8(t));
  }
#else
  const __m256i low = _mm256_set1_epi16(0x00FF);
  for (; j + 32 <= bytes; j += 32) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 2 * j));
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 2 * j + 32));
    const __m256i ta = _mm256_and_si256(_mm256_or_si256(a, _mm256_srli_epi16(a, 4)), low);
    const __m256i tb = _mm256_and_si256(_mm256_or_si256(b, _mm256_srli_epi16(b, 4)), low);
    const __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi16(ta, tb), 0xD8);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j), p);
  }
#endif
  for (; j < bytes; ++j) out[j] = (uint8_t)(c[2 * j] | c[2 * j + 1] << 4);
}

// The row's minimum and maximum, both starting from 0.
inline void row_range(const float* x, int64_t K, float& lo, float& hi) {
  vf mx = zero(), neg = zero();
  int64_t k = 0;
  for (; k + W <= K; k += W) {
    const vf v = load(x + k);
    mx = max(mx, v);
    neg = max(neg, sub(zero(), v));
  }
  if (k < K) {
    const vf v = load_partial(x + k, (int)(K - k));
    mx = max(mx, v);
    neg = max(neg, sub(zero(), v));
  }
  hi = reduce_max(mx);
  lo = -reduce_max(neg);
}
}  // namespace

namespace {
// One row's codes of K values and Kp - K padding codes z, two per byte, at out.
void row_codes(const float* x, int64_t K, int64_t Kp, float inv_s, int zero, vf cmin, uint8_t* out) {
  thread_local std::vector<uint8_t> codes;
  if ((int64_t)codes.size() < Kp + 64) codes.resize(Kp + 64);
  uint8_t* c = codes.data();
  const vf inv = set1(inv_s), z = set1((float)zero);
  int64_t k = 0;
#if defined(__AVX512F__)
  // Whole chunks straight to their 8 bytes: in each 64-bit lane (c_even, c_odd as int32),
  // v | v >> 28 holds c_even | c_odd << 4 in its low byte, which vpmovqb keeps.
  for (; k + W <= K; k += W) {
    const __m512i i = _mm512_cvtps_epi32(code_values(load(x + k), inv, z, cmin));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + k / 2),
                     _mm512_cvtepi64_epi8(_mm512_or_si512(i, _mm512_srli_epi64(i, 28))));
  }
  const int64_t done = k;
#else
  const int64_t done = 0;
#endif
  for (; k + W <= K; k += W) put_codes(c + k, load(x + k), inv, z, cmin, W);
  if (k < K) put_codes(c + k, load_partial(x + k, (int)(K - k)), inv, z, cmin, (int)(K - k));
  std::fill(c + K, c + Kp, (uint8_t)zero);
  pair_codes(c + done, (Kp - done) / 2, out + done / 2);
}
}  // namespace

void rows_min_max(const float* X, int64_t ldx, int64_t M, int64_t K, float* lo, float* hi) {
  for (int64_t m = 0; m < M; ++m) row_range(X + m * ldx, K, lo[m], hi[m]);
}

void quantize_rows_int4_with(const float* X, int64_t ldx, int64_t M, int64_t K, int64_t Kp, bool asymmetric,
                             const float* inv, const uint8_t* zeros, uint8_t* q, int64_t ldq) {
  const vf cmin = set1(asymmetric ? 0.f : 1.f);
  for (int64_t m = 0; m < M; ++m) row_codes(X + m * ldx, K, Kp, inv[m], zeros ? zeros[m] : 8, cmin, q + m * ldq);
}

void quantize_rows_int4(const float* X, int64_t ldx, int64_t M, int64_t K, int64_t Kp, bool asymmetric,
                        float static_scale, uint8_t* q, int64_t ldq, float* scales, uint8_t* zeros) {
  const vf cmin = set1(asymmetric ? 0.f : 1.f);
  for (int64_t m = 0; m < M; ++m) {
    const float* x = X + m * ldx;
    float lo = 0.f, hi = 0.f;
    if (static_scale <= 0.f) row_range(x, K, lo, hi);
    const Int4RowScale s = int4_row_scale(lo, hi, asymmetric, static_scale);
    scales[m] = s.scale;
    if (zeros) zeros[m] = (uint8_t)s.zero;
    row_codes(x, K, Kp, s.inv, s.zero, cmin, q + m * ldq);
  }
}

}  // namespace gannet::kernels::GANNET_ISA
