// BiFeat's fused gather decode, vectorized; compiled once per ISA (see core/simd.h). The SQ
// look-ups are gathers from the column-major magnitude table (16 or 8 columns per instruction);
// the PQ sub-vectors are vector copies.
#include <cstdint>
#include <cstring>

#include "gannet/core/simd.h"
#include "gannet/gnn/bifeat_decode.h"

namespace gannet::gnn::GANNET_ISA {
using namespace gannet::simd;

namespace {

// Rows ahead whose codes are prefetched: the codes of random nodes are cache misses, and a row's
// decode is short enough that one miss at a time would leave the memory system idle.
constexpr int64_t kPrefetchAhead = 8;

struct Location {
  bool sq;
  int64_t row;
  const uint8_t* codes;
};

inline Location locate(const BiFeatTables& t, int64_t v) {
  const uint64_t word = t.sq_mask[v >> 6], below = word & ((uint64_t(1) << (v & 63)) - 1);
  const int64_t sq_row = (int64_t)t.sq_rank[v >> 6] + __builtin_popcountll(below);
  if ((word >> (v & 63)) & 1) return {true, sq_row, t.sq_codes + sq_row * t.sq_row_bytes};
  return {false, v - sq_row, t.pq_codes + (v - sq_row) * t.pq_subvectors};
}

#if defined(__AVX512F__)
using vi = __m512i;
inline vi iset1(int x) { return _mm512_set1_epi32(x); }
inline vi iadd(vi a, vi b) { return _mm512_add_epi32(a, b); }
inline vi iand(vi a, vi b) { return _mm512_and_si512(a, b); }
inline vi lanes() { return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }
inline vf gather(const float* table, vi idx) { return _mm512_i32gather_ps(idx, table, 4); }
inline vf with_sign(vf mag, vi sign) { return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(mag), sign)); }
// W codes of 8 bits, zero-extended.
inline vi load_bytes(const uint8_t* p) { return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)p)); }
// W codes of 4 bits from W / 2 bytes, low nibble first.
inline vi load_nibbles(const uint8_t* p) {
  const __m128i b = _mm_loadl_epi64((const __m128i*)p), m = _mm_set1_epi8(15);
  const __m128i lo = _mm_and_si128(b, m), hi = _mm_and_si128(_mm_srli_epi16(b, 4), m);
  return _mm512_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi));
}
inline vi ishl(vi a, int s) { return _mm512_slli_epi32(a, s); }
// W signed bytes, sign-extended and converted (exactly) to floats.
inline vf load_int8s(const int8_t* p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)p)));
}
#else
using vi = __m256i;
inline vi iset1(int x) { return _mm256_set1_epi32(x); }
inline vi iadd(vi a, vi b) { return _mm256_add_epi32(a, b); }
inline vi iand(vi a, vi b) { return _mm256_and_si256(a, b); }
inline vi lanes() { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }
inline vf gather(const float* table, vi idx) { return _mm256_i32gather_ps(table, idx, 4); }
inline vf with_sign(vf mag, vi sign) { return _mm256_castsi256_ps(_mm256_xor_si256(_mm256_castps_si256(mag), sign)); }
inline vi load_bytes(const uint8_t* p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)p)); }
inline vi load_nibbles(const uint8_t* p) {
  int32_t w;
  std::memcpy(&w, p, 4);
  const __m128i b = _mm_cvtsi32_si128(w), m = _mm_set1_epi8(15);
  const __m128i lo = _mm_and_si128(b, m), hi = _mm_and_si128(_mm_srli_epi16(b, 4), m);
  return _mm256_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi));
}
inline vi ishl(vi a, int s) { return _mm256_slli_epi32(a, s); }
inline vf load_int8s(const int8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)p)));
}
#endif

// One SQ row. Column d's magnitudes start at table[d * C]; the code's top bit (bit bits - 1) is
// the sign, shifted to the float's sign bit.
template <int kBits>
inline void decode_sq_row(const uint8_t* c, const float* table, int64_t D, float* o) {
  constexpr int C = 1 << (kBits - 1);
  const vi level_mask = iset1(C - 1), sign_mask = iset1((int)0x80000000u), step = iset1(W * C);
  vi base = ishl(lanes(), kBits - 1);  // lane j: column j's first entry
  int64_t d = 0;
  for (; d + W <= D; d += W) {
    const vi code = kBits == 8 ? load_bytes(c + d) : load_nibbles(c + d / 2);
    const vf mag = gather(table, iadd(base, iand(code, level_mask)));
    store(o + d, with_sign(mag, iand(ishl(code, 32 - kBits), sign_mask)));
    base = iadd(base, step);
  }
  for (; d < D; ++d) {  // the tail, as the reference does it
    const int code = kBits == 8 ? c[d] : (c[d / 2] >> (4 * (d & 1))) & 15;
    const float mag = table[d * C + (code & (C - 1))];
    o[d] = (code & C) ? -mag : mag;
  }
}

inline void copy_floats(float* o, const float* s, int64_t n) {
  int64_t j = 0;
  for (; j + W <= n; j += W) store(o + j, load(s + j));
  if (j < n) store_partial(o + j, load_partial(s + j, (int)(n - j)), (int)(n - j));
}

// o[j] = float(q[j]) * scale[j], j < n: one rounding per value, as the reference does it. The
// tail's bytes go through a local copy, so nothing past the codebook's last row is read.
inline void widen_scaled(float* o, const int8_t* q, const float* scale, int64_t n) {
  int64_t j = 0;
  for (; j + W <= n; j += W) store(o + j, mul(load_int8s(q + j), load(scale + j)));
  if (j < n) {
    int8_t tail[W] = {};
    std::memcpy(tail, q + j, (size_t)(n - j));
    store_partial(o + j, mul(load_int8s(tail), load_partial(scale + j, (int)(n - j))), (int)(n - j));
  }
}

// 8-bit sub-vectors of 8 values (D = 128, M = 16): W / 8 of them per vector, their 8 bytes each
// loaded whole (no read past a centroid), their outputs and scales adjacent. Returns the first
// sub-vector left to the general path.
inline int64_t widen_scaled_by_8(const BiFeatTables& t, const uint8_t* c, float* o) {
  const int64_t M = t.pq_subvectors, K = t.pq_centroids;
  auto bytes8 = [&](int64_t m) { return _mm_loadl_epi64((const __m128i*)(t.pq_codebooks_i8 + (m * K + c[m]) * 8)); };
  int64_t m = 0;
  for (; m + W / 8 <= M; m += W / 8) {
#if defined(__AVX512F__)
    const vf q = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_unpacklo_epi64(bytes8(m), bytes8(m + 1))));
#else
    const vf q = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes8(m)));
#endif
    store(o + m * 8, mul(q, load(t.pq_scales + m * 8)));
  }
  return m;
}

inline void decode_pq_row(const BiFeatTables& t, const uint8_t* c, float* o) {
  const int64_t M = t.pq_subvectors, ds = t.dim / M;
  if (t.pq_codebook_bits == 8) {
    for (int64_t m = ds == 8 ? widen_scaled_by_8(t, c, o) : 0; m < M; ++m)
      widen_scaled(o + m * ds, t.pq_codebooks_i8 + (m * t.pq_centroids + c[m]) * ds, t.pq_scales + m * ds, ds);
    return;
  }
  for (int64_t m = 0; m < M; ++m) copy_floats(o + m * ds, t.pq_codebooks + (m * t.pq_centroids + c[m]) * ds, ds);
}

inline void prefetch_codes(const BiFeatTables& t, int64_t v) {
  const Location at = locate(t, v);
  _mm_prefetch((const char*)at.codes, _MM_HINT_T0);
  if (at.sq && t.sq_row_bytes > 64) _mm_prefetch((const char*)at.codes + 64, _MM_HINT_T0);
}

}  // namespace

void bifeat_decode_rows(const BiFeatTables& t, const int32_t* nodes, int64_t n, float* out) {
  const int64_t D = t.dim;
  for (int64_t i = 0; i < n; ++i) {
    if (i + kPrefetchAhead < n) prefetch_codes(t, nodes[i + kPrefetchAhead]);
    const Location at = locate(t, nodes[i]);
    float* o = out + i * D;
    if (!at.sq) decode_pq_row(t, at.codes, o);
    else if (t.sq_bits == 8) decode_sq_row<8>(at.codes, t.sq_magnitudes, D, o);
    else decode_sq_row<4>(at.codes, t.sq_magnitudes, D, o);
  }
}

}  // namespace gannet::gnn::GANNET_ISA
