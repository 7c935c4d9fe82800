// Vector token-wise activation quantization; compiled once per ISA (see core/simd.h). Two passes
// over each row: the absolute maximum, then scale, clamp, round to nearest even and narrow.
#include "gannet/core/simd.h"
#include "gannet/kernels/quantize_rows.h"

namespace gannet::kernels::GANNET_ISA {
using namespace gannet::simd;

namespace {
inline vf abs_v(vf v) { return max(v, sub(zero(), v)); }

// rint(clamp(x * inv, +-127)) narrowed to int8: n values (n <= W).
inline void put_q(int8_t* q, vf x, vf inv, int n) {
  vf v = min(max(mul(x, inv), set1(-127.f)), set1(127.f));
#if defined(__AVX512F__)
  _mm512_mask_cvtsepi32_storeu_epi8(q, tail_mask(n), _mm512_cvtps_epi32(v));
#else
  const __m256i i = _mm256_cvtps_epi32(v);
  const __m128i p16 = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
  const __m128i p8 = _mm_packs_epi16(p16, p16);
  if (n == W) {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(q), p8);
  } else {
    alignas(16) int8_t t[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(t), p8);
    for (int j = 0; j < n; ++j) q[j] = t[j];
  }
#endif
}
}  // namespace

namespace {
inline float row_amax(const float* x, int64_t K) {
  vf mx = zero();
  int64_t k = 0;
  for (; k + W <= K; k += W) mx = max(mx, abs_v(load(x + k)));
  if (k < K) mx = max(mx, abs_v(load_partial(x + k, (int)(K - k))));
  return reduce_max(mx);
}

inline void row_quantize(const float* x, int64_t K, float inv, int8_t* q) {
  const vf vinv = set1(inv);
  int64_t k = 0;
  for (; k + W <= K; k += W) put_q(q + k, load(x + k), vinv, W);
  if (k < K) put_q(q + k, load_partial(x + k, (int)(K - k)), vinv, (int)(K - k));
}
}  // namespace

void quantize_rows(const float* X, int64_t ldx, int64_t M, int64_t K, float static_scale, int8_t* q, int64_t ldq,
                   float* scales) {
  for (int64_t m = 0; m < M; ++m) {
    const float* x = X + m * ldx;
    const RowScale s = row_scale(static_scale > 0.f ? 0.f : row_amax(x, K), static_scale);
    scales[m] = s.scale;
    row_quantize(x, K, s.inv, q + m * ldq);
  }
}

void rows_abs_max(const float* X, int64_t ldx, int64_t M, int64_t K, float* amax) {
  for (int64_t m = 0; m < M; ++m) amax[m] = row_amax(X + m * ldx, K);
}

void quantize_rows_inv(const float* X, int64_t ldx, int64_t M, int64_t K, const float* inv, int8_t* q, int64_t ldq) {
  for (int64_t m = 0; m < M; ++m) row_quantize(X + m * ldx, K, inv[m], q + m * ldq);
}

}  // namespace gannet::kernels::GANNET_ISA
