// Vector bodies of quant_matmul (int8 activations) and quant_matmul_f32 (f32 activations);
// compiled once per ISA (see core/simd.h). The layout and the arithmetic every path follows are in
// quant_matmul.h.
//
// AVX-512: a 16-row block is one register of 16 lanes. int8 activations: one vpdpbusd per 64-byte
// chunk and activation row (4 activation bytes broadcast against 16 rows x 4 k's). For prefill a
// tile is 6 activation rows x 2 blocks: 12 int32 accumulators for the group being summed and 12
// f32 sums over the groups, all in registers (each broadcast feeds 2 products, each weight load
// 6), and the two blocks (24 KB at K = 768) stay in L1 while all tiles of rows pass over them.
// Against 6 x 4 with the f32 sums in memory (L1), the group-64 epilogue costs a quarter of the
// instructions it did: 512-row products went from 67-85% to 79-94% of oneDNN's u8s8s32 (alternated
// runs, Zen 5). Few rows (M <= 4) take one block at a time: one sequential stream per thread.
// f32 activations: a chunk is widened to 4 (int8) or 8 (int4: a 16-entry table lookup, vpermps,
// per nibble) vectors of 16 rows' values and each feeds one FMA per activation row; tiles of up to
// 4 rows.
// AVX2 (no VNNI): the same arithmetic, one activation row at a time, vpmaddwd on int16.
#include <algorithm>
#include <cstring>
#include <vector>

#include "gannet/core/isa_scratch.h"
#include "gannet/core/simd.h"
#include "gannet/kernels/gelu.h"
#include "gannet/kernels/quant_matmul.h"

#if defined(__AVX512F__) && !defined(__clang__)
// Only these functions use VNNI (the dispatcher checks cpu_has_avx512_vnni()); the rest of the
// AVX-512 library stays runnable on AVX-512 CPUs without it. (VNNI is reached through asm only, so
// clang, which has no GCC target pragmas, needs no target switch.)
#pragma GCC push_options
#pragma GCC target("avx512vnni")
#endif

namespace gannet::kernels::GANNET_ISA {
using namespace gannet::simd;

namespace {
constexpr int64_t R = kQBlockRows;

struct Layout {
  int64_t meta, group_stride, block_stride, groups, G;
  int bias;
  explicit Layout(const QPackedMatrix& W)
      : meta(W.asymmetric ? 128 : 64),
        group_stride(meta + (W.bits == 8 ? R * W.group : R * W.group / 2)),
        block_stride(W.K / W.group * group_stride),
        groups(W.K / W.group),
        G(W.group),
        bias(W.bits == 8 ? 128 : 8) {}
};

inline int32_t load32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

#if defined(__AVX512F__)
// Tiles: int8 activation rows x blocks of 16 weight rows (accumulators: rows x blocks).
constexpr int kA8Mt = 6, kA8Nb = 2, kA8Mt4 = 6, kA8Nb4 = 2, kMaxMtA16 = 4;

// acc += u8 w . s8 (4 bytes at p, broadcast), in 16 lanes of 4 products. Written as asm so that
// the broadcast folds into the instruction and GCC 12 keeps each accumulator in one register (with
// the intrinsic it copies every accumulator once per step: twice the instructions).
inline __m512i dpbusd_bcast(__m512i acc, __m512i w, const int32_t* p) {
  asm("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*p));
  return acc;
}

// Activations of a tile of MT rows as a8_tile reads them: quad (4 k's) c of row m at word
// c * MT + m, so that every broadcast is at a constant offset from one pointer; the tile's group
// sums likewise at g * MT + m, pre-multiplied by -bias for symmetric weights.
inline void pack_tile(const QuantizedRows& A, const int32_t* asum, int64_t groups, int bias, bool asym, int64_t m0,
                      int mt, int32_t* aq, int32_t* as) {
  const int64_t quads = A.K / 4;
  for (int m = 0; m < mt; ++m) {
    const int8_t* a = A.q + (m0 + m) * A.ld;
    for (int64_t c = 0; c < quads; ++c) aq[c * mt + m] = load32(a + 4 * c);
    for (int64_t g = 0; g < groups; ++g)
      as[g * mt + m] = asym ? -asum[(m0 + m) * groups + g] : -bias * asum[(m0 + m) * groups + g];
  }
}

// acc += u8 w . s8 b (b: 4 bytes broadcast to every lane), as asm for the reason above.
inline __m512i dpbusd(__m512i acc, __m512i w, __m512i b) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(w), "v"(b));
  return acc;
}

// out[(nb * MT + m) * 16 + r] for MT activation rows (a tile packed by pack_tile) against NB
// consecutive blocks (NB * 16 rows of W), all groups. The int32 accumulators and the f32 sums over
// groups stay in registers (NB * MT of each: at most 24 with the weights and the broadcast).
template <int BITS, bool ASYM, int NB, int MT>
inline void a8_tile(const int32_t* aq, const int32_t* as, const uint8_t* blk, const Layout& L, float* out) {
  // int4 at few rows: low and high nibbles in separate chains (integer sums: any order is exact).
  constexpr bool kSplit = BITS == 4 && NB == 1 && MT <= 4;
  const __m512i nib = _mm512_set1_epi8(0x0F);
  __m512 f[NB][MT];
  for (int nb = 0; nb < NB; ++nb)
    for (int m = 0; m < MT; ++m) f[nb][m] = _mm512_setzero_ps();
  for (int64_t g = 0; g < L.groups; ++g, as += MT) {
    const uint8_t* base = blk + g * L.group_stride;
    __m512i acc[NB][MT], acc2[MT];
    for (int nb = 0; nb < NB; ++nb) {
      if constexpr (ASYM) {
        const __m512i o = _mm512_loadu_si512(base + nb * L.block_stride + 64);
        for (int m = 0; m < MT; ++m) acc[nb][m] = _mm512_mullo_epi32(o, _mm512_set1_epi32(as[m]));
      } else {
        for (int m = 0; m < MT; ++m) acc[nb][m] = _mm512_set1_epi32(as[m]);
      }
    }
    if constexpr (kSplit)
      for (int m = 0; m < MT; ++m) acc2[m] = _mm512_setzero_si512();
    const uint8_t* w = base + L.meta;
    if constexpr (BITS == 8) {
      for (int64_t c = 0; c < L.G / 4; ++c, aq += MT) {
        __m512i wv[NB];
        for (int nb = 0; nb < NB; ++nb) wv[nb] = _mm512_loadu_si512(w + nb * L.block_stride + 64 * c);
        for (int m = 0; m < MT; ++m) {
          if constexpr (NB == 1) {
            acc[0][m] = dpbusd_bcast(acc[0][m], wv[0], aq + m);
          } else {
            const __m512i b = _mm512_set1_epi32(aq[m]);
            for (int nb = 0; nb < NB; ++nb) acc[nb][m] = dpbusd(acc[nb][m], wv[nb], b);
          }
        }
      }
    } else {
      for (int64_t c = 0; c < L.G / 8; ++c, aq += 2 * MT) {
        __m512i lo[NB], hi[NB];
        for (int nb = 0; nb < NB; ++nb) {
          const __m512i v = _mm512_loadu_si512(w + nb * L.block_stride + 64 * c);
          lo[nb] = _mm512_and_si512(v, nib);
          hi[nb] = _mm512_and_si512(_mm512_srli_epi16(v, 4), nib);
        }
        for (int m = 0; m < MT; ++m) {
          if constexpr (NB == 1) {
            acc[0][m] = dpbusd_bcast(acc[0][m], lo[0], aq + m);
            if constexpr (kSplit)
              acc2[m] = dpbusd_bcast(acc2[m], hi[0], aq + MT + m);
            else
              acc[0][m] = dpbusd_bcast(acc[0][m], hi[0], aq + MT + m);
          } else {
            const __m512i bl = _mm512_set1_epi32(aq[m]), bh = _mm512_set1_epi32(aq[MT + m]);
            for (int nb = 0; nb < NB; ++nb) acc[nb][m] = dpbusd(dpbusd(acc[nb][m], lo[nb], bl), hi[nb], bh);
          }
        }
      }
    }
    for (int nb = 0; nb < NB; ++nb) {
      const __m512 s = _mm512_loadu_ps(reinterpret_cast<const float*>(base + nb * L.block_stride));
      for (int m = 0; m < MT; ++m) {
        __m512i d = acc[nb][m];
        if constexpr (kSplit) d = _mm512_add_epi32(d, acc2[m]);
        f[nb][m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), s, f[nb][m]);
      }
    }
  }
  for (int nb = 0; nb < NB; ++nb)
    for (int m = 0; m < MT; ++m) _mm512_store_ps(out + 16 * (nb * MT + m), f[nb][m]);
}

// Same for f32 activations: out[m] = sum_g s * ((c0 + c1) + (c2 + c3) - o * xsum).
template <int BITS, bool ASYM, int MT>
inline void a16_tile(const float* const* x, const float* const* xsum, const uint8_t* blk, const Layout& L,
                     __m512 (&out)[MT]) {
  const __m512i byte = _mm512_set1_epi32(0xFF);
  const __m512 table = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (int m = 0; m < MT; ++m) out[m] = _mm512_setzero_ps();
  for (int64_t g = 0; g < L.groups; ++g) {
    const uint8_t* base = blk + g * L.group_stride;
    const uint8_t* w = base + L.meta;
    const int64_t k0 = g * L.G;
    __m512 c[MT][4];
    for (int m = 0; m < MT; ++m)
      for (int j = 0; j < 4; ++j) c[m][j] = _mm512_setzero_ps();
    if constexpr (BITS == 8) {
      for (int64_t q = 0; q < L.G / 4; ++q) {
        const __m512i v = _mm512_loadu_si512(w + 64 * q);
        __m512 f[4];
        f[0] = _mm512_cvtepi32_ps(_mm512_and_si512(v, byte));
        f[1] = _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32(v, 8), byte));
        f[2] = _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32(v, 16), byte));
        f[3] = _mm512_cvtepi32_ps(_mm512_srli_epi32(v, 24));
        for (int m = 0; m < MT; ++m) {
          const float* xp = x[m] + k0 + 4 * q;
          for (int j = 0; j < 4; ++j) c[m][j] = _mm512_fmadd_ps(_mm512_set1_ps(xp[j]), f[j], c[m][j]);
        }
      }
    } else {
      for (int64_t q = 0; q < L.G / 8; ++q) {
        const __m512i v = _mm512_loadu_si512(w + 64 * q);
        // vpermps reads the low 4 bits of each lane: the nibble at bit 4i, shifted down, is its index.
        // f[0..3]: low nibbles (k0 + 8q + j), f[4..7]: high nibbles (k0 + 8q + 4 + j).
        __m512 f[8];
        f[0] = _mm512_permutexvar_ps(v, table);
        for (int i = 1; i < 8; ++i) {
          const int j = i < 4 ? i : i - 4, sh = 8 * j + (i < 4 ? 0 : 4);
          f[i] = _mm512_permutexvar_ps(_mm512_srli_epi32(v, sh), table);
        }
        for (int m = 0; m < MT; ++m) {
          const float* xp = x[m] + k0 + 8 * q;
          for (int j = 0; j < 4; ++j) c[m][j] = _mm512_fmadd_ps(_mm512_set1_ps(xp[j]), f[j], c[m][j]);
          for (int j = 0; j < 4; ++j) c[m][j] = _mm512_fmadd_ps(_mm512_set1_ps(xp[4 + j]), f[4 + j], c[m][j]);
        }
      }
    }
    const __m512 s = _mm512_loadu_ps(reinterpret_cast<const float*>(base));
    const __m512 o = ASYM ? _mm512_cvtepi32_ps(_mm512_loadu_si512(base + 64)) : _mm512_set1_ps((float)L.bias);
    for (int m = 0; m < MT; ++m) {
      __m512 t = _mm512_add_ps(_mm512_add_ps(c[m][0], c[m][1]), _mm512_add_ps(c[m][2], c[m][3]));
      t = _mm512_fnmadd_ps(o, _mm512_set1_ps(xsum[m][g]), t);
      out[m] = _mm512_fmadd_ps(t, s, out[m]);
    }
  }
}

// Writes one tile's 16-row outputs: y = v (or y += v), masked to the valid rows.
inline void put(float* y, __m512 v, __mmask16 mask, Epilogue e) {
  if (e == Epilogue::accumulate) v = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, y), v);
  _mm512_mask_storeu_ps(y, mask, v);
}

#define GANNET_Q_CASE(N, ...) \
  case N:                     \
    __VA_ARGS__;              \
    break;
#define GANNET_Q_CASES_4(F) GANNET_Q_CASE(1, F(1)) GANNET_Q_CASE(2, F(2)) GANNET_Q_CASE(3, F(3)) GANNET_Q_CASE(4, F(4))
#define GANNET_Q_CASES_8(F) \
  GANNET_Q_CASES_4(F) GANNET_Q_CASE(5, F(5)) GANNET_Q_CASE(6, F(6)) GANNET_Q_CASE(7, F(7)) GANNET_Q_CASE(8, F(8))
#define GANNET_Q_CASES_12(F) \
  GANNET_Q_CASES_8(F) GANNET_Q_CASE(9, F(9)) GANNET_Q_CASE(10, F(10)) GANNET_Q_CASE(11, F(11)) GANNET_Q_CASE(12, F(12))

// pack_tile for 4-bit rows (QuantizedRows::bits 4): each row's codes widened to the int8 values
// c - z as they go into the tile, 64 at a time, and the group sums taken from the codes (vpsadbw:
// sum c - z * group), so that no widened copy of the rows is made. part: K / 16 words of scratch.
inline void pack_tile_a4(const QuantizedRows& A, int64_t group, int64_t groups, int bias, bool asym, int64_t m0,
                         int mt, int32_t* aq, int32_t* as, int32_t* part) {
  const int64_t quads = A.K / 4;
  const __m256i nib = _mm256_set1_epi8(0x0F);
  for (int m = 0; m < mt; ++m) {
    const uint8_t* p = reinterpret_cast<const uint8_t*>(A.q) + (m0 + m) * A.ld;
    const int z = A.zero ? A.zero[m0 + m] : 8;
    const __m256i zv = _mm256_set1_epi8((char)z);
    alignas(64) int32_t w[16];
    int64_t c = 0;
    for (; c + 16 <= quads; c += 16) {  // 32 bytes of codes: 64 values, 16 quads
      const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2 * c));
      const __m256i lo = _mm256_and_si256(b, nib), hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), nib);
      // unpacklo: values 0-15 | 32-47, unpackhi: 16-31 | 48-63 (per 128-bit lane).
      const __m256i u0 = _mm256_sub_epi8(_mm256_unpacklo_epi8(lo, hi), zv);
      const __m256i u1 = _mm256_sub_epi8(_mm256_unpackhi_epi8(lo, hi), zv);
      _mm256_store_si256(reinterpret_cast<__m256i*>(w), _mm256_permute2x128_si256(u0, u1, 0x20));
      _mm256_store_si256(reinterpret_cast<__m256i*>(w + 8), _mm256_permute2x128_si256(u0, u1, 0x31));
      for (int i = 0; i < 16; ++i) aq[(c + i) * mt + m] = w[i];
      // Per 64-bit lane j: the codes of values 16 j .. 16 j + 15.
      const __m256i s = _mm256_add_epi64(_mm256_sad_epu8(lo, _mm256_setzero_si256()),
                                         _mm256_sad_epu8(hi, _mm256_setzero_si256()));
      alignas(32) int64_t s4[4];
      _mm256_store_si256(reinterpret_cast<__m256i*>(s4), s);
      for (int j = 0; j < 4; ++j) part[c / 4 + j] = (int32_t)s4[j];
    }
    for (; c < quads; c += 4) {  // a last 32 values (K is a multiple of 32)
      int32_t sum = 0;
      for (int64_t i = 0; i < 4; ++i) {
        const uint8_t b0 = p[2 * (c + i)], b1 = p[2 * (c + i) + 1];
        const int v[4] = {(b0 & 0x0F) - z, (b0 >> 4) - z, (b1 & 0x0F) - z, (b1 >> 4) - z};
        uint32_t word = 0;
        for (int j = 0; j < 4; ++j) word |= (uint32_t)(uint8_t)(int8_t)v[j] << (8 * j);
        aq[(c + i) * mt + m] = (int32_t)word;
        sum += (b0 & 0x0F) + (b0 >> 4) + (b1 & 0x0F) + (b1 >> 4);
      }
      part[c / 4] = sum;
    }
    for (int64_t g = 0; g < groups; ++g) {
      int32_t sum = -z * (int32_t)group;
      for (int64_t j = g * group / 16; j < (g + 1) * group / 16; ++j) sum += part[j];
      as[g * mt + m] = asym ? -sum : -bias * sum;
    }
  }
}

// The rows' tiles as a8_tile reads them (pack_tile), each tile at aq + m0 * K / 4 and its sums at
// as + m0 * groups, for the tiles of rows [m_begin, m_end) (m_begin a multiple of the tile rows).
template <int BITS, bool ASYM>
void a8_pack_rows(const QuantizedRows& A, const int32_t* asum, const QPackedMatrix& W, int64_t m_begin, int64_t m_end,
                  int32_t* aq, int32_t* as) {
  constexpr int MaxMt = BITS == 8 ? kA8Mt : kA8Mt4;
  const Layout L(W);
  thread_local IsaScratch<int32_t> part_buffer;
  int32_t* part = A.bits == 4 ? part_buffer.reserve(A.K / 16 + 2) : nullptr;
  for (int64_t m0 = m_begin; m0 < m_end; m0 += MaxMt) {
    const int mt = (int)(m_end - m0 < MaxMt ? m_end - m0 : MaxMt);
    if (A.bits == 4)
      pack_tile_a4(A, L.G, L.groups, L.bias, ASYM, m0, mt, aq + m0 * A.K / 4, as + m0 * L.groups, part);
    else
      pack_tile(A, asum, L.groups, L.bias, ASYM, m0, mt, aq + m0 * A.K / 4, as + m0 * L.groups);
  }
}

// One tile of mt rows (1 <= mt <= MaxMt) against NB blocks: a8_tile at its compile-time row count.
template <int BITS, bool ASYM, int NB, int MaxMt>
__attribute__((always_inline)) inline void a8_tile_rows(int mt, const int32_t* aq, const int32_t* as,
                                                        const uint8_t* blk, const Layout& L, float* out) {
#define GANNET_Q_TILE(MT) a8_tile<BITS, ASYM, NB, (MT <= MaxMt ? MT : 1)>(aq, as, blk, L, out)
  if constexpr (MaxMt > 8) {
    switch (mt) { GANNET_Q_CASES_12(GANNET_Q_TILE) }
  } else {
    switch (mt) { GANNET_Q_CASES_8(GANNET_Q_TILE) }
  }
#undef GANNET_Q_TILE
}

// nb consecutive int4 blocks at blk rewritten in the int8 layout of L8 (each nibble a byte, still
// biased by 8, the metadata copied): chunk c of 8 k's becomes chunks 2c (its low nibbles, k's 0-3)
// and 2c + 1 (high, 4-7), the order in which a8_tile<4> feeds them. The int8 tile then runs on it
// with the int4 rows' sums (-8 sum(a)): the same integers, so bitwise the int4 tile's result,
// without two logic operations per weight vector in the inner loop.
inline void widen_int4_blocks(const uint8_t* blk, const Layout& L, int nb, const Layout& L8, uint8_t* out) {
  const __m512i nib = _mm512_set1_epi8(0x0F);
  for (int b = 0; b < nb; ++b)
    for (int64_t g = 0; g < L.groups; ++g) {
      const uint8_t* src = blk + b * L.block_stride + g * L.group_stride;
      uint8_t* dst = out + b * L8.block_stride + g * L8.group_stride;
      std::memcpy(dst, src, L.meta);
      for (int64_t c = 0; c < L.G / 8; ++c) {
        const __m512i v = _mm512_loadu_si512(src + L.meta + 64 * c);
        _mm512_store_si512(dst + L8.meta + 128 * c, _mm512_and_si512(v, nib));
        _mm512_store_si512(dst + L8.meta + 128 * c + 64, _mm512_and_si512(_mm512_srli_epi16(v, 4), nib));
      }
    }
}

// Output columns [n_begin, n_end) from the tiles of all rows, packed by a8_pack_rows.
template <int BITS, bool ASYM>
void a8_range(const QuantizedRows& A, const int32_t* aq_all, const int32_t* as_all, const QPackedMatrix& W,
              const float* bias, float* Y, int64_t ldy, Epilogue e, int64_t n_begin, int64_t n_end) {
  constexpr int MaxMt = BITS == 8 ? kA8Mt : kA8Mt4, NbMax = BITS == 8 ? kA8Nb : kA8Nb4;
  const Layout L(W);
  const uint8_t* data = static_cast<const uint8_t*>(W.data);
  alignas(64) float out[NbMax * MaxMt * 16];
  // Many rows and a large Y: the range goes in equal panels of at most kPanelBytes of weights
  // (kept in L2) and the rows in chunks of kChunkTiles tiles, each chunk over all of a panel's
  // blocks. Over the whole range and all rows at once, each step of blocks writes its 16 outputs
  // to every row of Y in turn; when Y spans more than the TLB covers (the LM head: 512 x 50257
  // floats, 103 MB) nearly every one of those 64-byte writes misses the TLB (W8A8 at 41-54% of
  // oneDNN on the Intel machine, 78-93% in panels of one tile; chunks of 8 tiles: 62-76%).
  // Otherwise one panel and one chunk: the loop as it was (its code unchanged, which matters:
  // a version with the step in a lambda measured 3072 x 768 and 768 x 3072 20-30% slower).
  constexpr int64_t kPanelBytes = 512 << 10, kLargeY = 8 << 20, kChunkTiles = 1;
  const int64_t range = n_end - n_begin, range_bytes = (range + R - 1) / R * L.block_stride;
  int64_t panel = range, chunk = A.M;
  if (A.M > MaxMt && A.M * ldy * (int64_t)sizeof(float) > kLargeY && range_bytes > kPanelBytes) {
    const int64_t step = NbMax * R, panels = (range_bytes + kPanelBytes - 1) / kPanelBytes;
    panel = ((range + panels - 1) / panels + step - 1) / step * step;
    chunk = kChunkTiles * MaxMt;
  }
  // int4 weights under many rows: each step's blocks widened to bytes once (widen_int4_blocks).
  // The widened step is what the int8 product reads (48 KiB at K = 1536: from L2 beyond L1);
  // widening it at K = 1536 as well took W4A4 from 0.92-1.03x W8A8 to 1.08-1.14x (Intel Xeon).
  constexpr int64_t kWidenRows = 8 * MaxMt;
  const QPackedMatrix W8{8, NbMax * R, W.K, W.group, W.asymmetric, nullptr};
  const Layout L8(W8);
  const bool widen = BITS == 4 && chunk >= kWidenRows;
  thread_local IsaScratch<uint8_t> widen_buffer;
  uint8_t* wide = widen ? widen_buffer.reserve(NbMax * L8.block_stride) : nullptr;
  for (int64_t p0 = n_begin; p0 < n_end; p0 += panel) {
    const int64_t p1 = std::min(n_end, p0 + panel);
    for (int64_t r0 = 0; r0 < A.M; r0 += chunk) {
      const int64_t r1 = std::min(A.M, r0 + chunk);
      for (int64_t n = p0; n < p1;) {
        const uint8_t* blk = data + (n / R) * L.block_stride;
        // Several rows: NbMax blocks at a time while whole ones remain (each weight load then feeds
        // more products), then single blocks. Few rows: one block at a time (one sequential stream).
        const int nbs = A.M > 4 && p1 - n >= NbMax * R ? NbMax : 1;
        const bool wide_step = widen && nbs == NbMax;
        if (wide_step) widen_int4_blocks(blk, L, NbMax, L8, wide);
        for (int64_t m0 = r0; m0 < r1; m0 += MaxMt) {
          const int mt = (int)(A.M - m0 < MaxMt ? A.M - m0 : MaxMt);
          const int32_t* aq = aq_all + m0 * A.K / 4;
          const int32_t* as = as_all + m0 * L.groups;
          if (nbs == 1)
            a8_tile_rows<BITS, ASYM, 1, MaxMt>(mt, aq, as, blk, L, out);
          else if (wide_step)
            a8_tile_rows<8, ASYM, NbMax, MaxMt>(mt, aq, as, wide, L8, out);
          else
            a8_tile_rows<BITS, ASYM, NbMax, MaxMt>(mt, aq, as, blk, L, out);
          for (int nb = 0; nb < nbs; ++nb) {
            const int64_t n1 = n + nb * R;
            const int rows = (int)(n_end - n1 < R ? n_end - n1 : R);
            const __mmask16 mask = (__mmask16)((1u << rows) - 1u);
            const __m512 b = bias ? _mm512_maskz_loadu_ps(mask, bias + n1) : _mm512_setzero_ps();
            for (int i = 0; i < mt; ++i)
              put(Y + (m0 + i) * ldy + n1,
                  _mm512_fmadd_ps(_mm512_load_ps(out + 16 * (nb * mt + i)), _mm512_set1_ps(A.scale[m0 + i]), b),
                  mask, e);
          }
        }
        n += nbs * R;
      }
    }
  }
  if (e == Epilogue::gelu)
    for (int64_t m = 0; m < A.M; ++m) gelu_forward(Y + m * ldy + n_begin, Y + m * ldy + n_begin, n_end - n_begin);
}

template <int BITS, bool ASYM>
void a16_range(const float* X, int64_t ldx, int64_t M, const float* xsum, const QPackedMatrix& W, const float* bias,
               float* Y, int64_t ldy, Epilogue e, int64_t n_begin, int64_t n_end) {
  constexpr int MaxMt = kMaxMtA16;
  const Layout L(W);
  const uint8_t* data = static_cast<const uint8_t*>(W.data);
  for (int64_t n = n_begin; n < n_end; n += R) {
    const uint8_t* blk = data + (n / R) * L.block_stride;
    const int rows = (int)(n_end - n < R ? n_end - n : R);
    const __mmask16 mask = (__mmask16)((1u << rows) - 1u);
    const __m512 b = bias ? _mm512_maskz_loadu_ps(mask, bias + n) : _mm512_setzero_ps();
    for (int64_t m0 = 0; m0 < M; m0 += MaxMt) {
      const int mt = (int)(M - m0 < MaxMt ? M - m0 : MaxMt);
      const float* x[MaxMt];
      const float* s[MaxMt];
      for (int i = 0; i < mt; ++i) {
        x[i] = X + (m0 + i) * ldx;
        s[i] = xsum + (m0 + i) * L.groups;
      }
      __m512 out[MaxMt];
#define GANNET_Q_TILE(MT) a16_tile<BITS, ASYM, MT>(x, s, blk, L, reinterpret_cast<__m512(&)[MT]>(out))
      switch (mt) { GANNET_Q_CASES_4(GANNET_Q_TILE) }
#undef GANNET_Q_TILE
      for (int i = 0; i < mt; ++i) put(Y + (m0 + i) * ldy + n, _mm512_add_ps(out[i], b), mask, e);
    }
  }
  if (e == Epilogue::gelu)
    for (int64_t m = 0; m < M; ++m) gelu_forward(Y + m * ldy + n_begin, Y + m * ldy + n_begin, n_end - n_begin);
}

#else  // AVX2

// Writes a block's 16 outputs from two 8-row halves, rows < `rows` only.
inline void put(float* y, const __m256 (&v)[2], int rows, Epilogue e) {
  alignas(32) float t[16];
  _mm256_store_ps(t, v[0]);
  _mm256_store_ps(t + 8, v[1]);
  for (int r = 0; r < rows; ++r) {
    if (e == Epilogue::accumulate)
      y[r] += t[r];
    else
      y[r] = t[r];
  }
}

// 32 bytes of one half (8 rows x 4 k's, as u8) times 4 activations (as int16, repeated): pairs of
// products per row in accL (rows 0-3) and accH (rows 4-7).
inline void madd_half(__m256i wv, __m256i a16, __m256i& accL, __m256i& accH) {
  accL = _mm256_add_epi32(accL, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm256_castsi256_si128(wv)), a16));
  accH = _mm256_add_epi32(accH, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm256_extracti128_si256(wv, 1)), a16));
}

inline __m256i act16(const int8_t* p) {
  return _mm256_broadcastq_epi64(_mm_cvtepi8_epi16(_mm_cvtsi32_si128(load32(p))));
}

template <int BITS, bool ASYM>
void a8_range(const QuantizedRows& A, const int32_t* asum, const QPackedMatrix& W, const float* bias, float* Y,
              int64_t ldy, Epilogue e, int64_t n_begin, int64_t n_end) {
  const Layout L(W);
  const uint8_t* data = static_cast<const uint8_t*>(W.data);
  const __m256i nib = _mm256_set1_epi8(0x0F), order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
  for (int64_t n = n_begin; n < n_end; n += R) {
    const uint8_t* blk = data + (n / R) * L.block_stride;
    const int rows = (int)(n_end - n < R ? n_end - n : R);
    alignas(32) float bb[16] = {};
    for (int r = 0; r < rows && bias; ++r) bb[r] = bias[n + r];
    for (int64_t m = 0; m < A.M; ++m) {
      const int8_t* a = A.q + m * A.ld;
      __m256 out[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
      for (int64_t g = 0; g < L.groups; ++g) {
        const uint8_t* base = blk + g * L.group_stride;
        const uint8_t* w = base + L.meta;
        const int64_t k0 = g * L.G;
        __m256i accL[2] = {}, accH[2] = {};
        if constexpr (BITS == 8) {
          for (int64_t c = 0; c < L.G / 4; ++c) {
            const __m256i a16 = act16(a + k0 + 4 * c);
            for (int h = 0; h < 2; ++h)
              madd_half(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 64 * c + 32 * h)), a16, accL[h],
                        accH[h]);
          }
        } else {
          for (int64_t c = 0; c < L.G / 8; ++c) {
            const __m256i alo = act16(a + k0 + 8 * c), ahi = act16(a + k0 + 8 * c + 4);
            for (int h = 0; h < 2; ++h) {
              const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 64 * c + 32 * h));
              madd_half(_mm256_and_si256(v, nib), alo, accL[h], accH[h]);
              madd_half(_mm256_and_si256(_mm256_srli_epi16(v, 4), nib), ahi, accL[h], accH[h]);
            }
          }
        }
        for (int h = 0; h < 2; ++h) {
          // hadd gives rows (0, 1, 4, 5, 2, 3, 6, 7) of the half; put them in order.
          __m256i d = _mm256_permutevar8x32_epi32(_mm256_hadd_epi32(accL[h], accH[h]), order);
          if constexpr (ASYM)
            d = _mm256_sub_epi32(
                d, _mm256_mullo_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(base + 64 + 32 * h)),
                                      _mm256_set1_epi32(asum[m * L.groups + g])));
          else
            d = _mm256_sub_epi32(d, _mm256_set1_epi32(L.bias * asum[m * L.groups + g]));
          out[h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), _mm256_loadu_ps(reinterpret_cast<const float*>(base) + 8 * h),
                                   out[h]);
        }
      }
      const __m256 sa = _mm256_set1_ps(A.scale[m]);
      const __m256 v[2] = {_mm256_fmadd_ps(out[0], sa, _mm256_load_ps(bb)),
                           _mm256_fmadd_ps(out[1], sa, _mm256_load_ps(bb + 8))};
      put(Y + m * ldy + n, v, rows, e);
    }
  }
  if (e == Epilogue::gelu)
    for (int64_t m = 0; m < A.M; ++m) gelu_forward(Y + m * ldy + n_begin, Y + m * ldy + n_begin, n_end - n_begin);
}

template <int BITS, bool ASYM>
void a16_range(const float* X, int64_t ldx, int64_t M, const float* xsum, const QPackedMatrix& W, const float* bias,
               float* Y, int64_t ldy, Epilogue e, int64_t n_begin, int64_t n_end) {
  const Layout L(W);
  const uint8_t* data = static_cast<const uint8_t*>(W.data);
  const __m256i byte = _mm256_set1_epi32(0xFF), nib = _mm256_set1_epi32(0x0F);
  for (int64_t n = n_begin; n < n_end; n += R) {
    const uint8_t* blk = data + (n / R) * L.block_stride;
    const int rows = (int)(n_end - n < R ? n_end - n : R);
    alignas(32) float bb[16] = {};
    for (int r = 0; r < rows && bias; ++r) bb[r] = bias[n + r];
    for (int64_t m = 0; m < M; ++m) {
      const float* x = X + m * ldx;
      __m256 out[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
      for (int64_t g = 0; g < L.groups; ++g) {
        const uint8_t* base = blk + g * L.group_stride;
        const uint8_t* w = base + L.meta;
        const int64_t k0 = g * L.G;
        __m256 c[2][4];
        for (int h = 0; h < 2; ++h)
          for (int j = 0; j < 4; ++j) c[h][j] = _mm256_setzero_ps();
        if constexpr (BITS == 8) {
          for (int64_t q = 0; q < L.G / 4; ++q)
            for (int h = 0; h < 2; ++h) {
              const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 64 * q + 32 * h));
              for (int j = 0; j < 4; ++j) {
                const __m256 f = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(v, 8 * j), byte));
                c[h][j] = _mm256_fmadd_ps(_mm256_set1_ps(x[k0 + 4 * q + j]), f, c[h][j]);
              }
            }
        } else {
          for (int64_t q = 0; q < L.G / 8; ++q)
            for (int h = 0; h < 2; ++h) {
              const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 64 * q + 32 * h));
              for (int i = 0; i < 8; ++i) {  // low nibbles (k's 0-3 of the chunk), then high (4-7)
                const int j = i % 4, sh = 8 * j + (i < 4 ? 0 : 4);
                const __m256 f = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(v, sh), nib));
                c[h][j] = _mm256_fmadd_ps(_mm256_set1_ps(x[k0 + 8 * q + i]), f, c[h][j]);
              }
            }
        }
        const float* sp = reinterpret_cast<const float*>(base);
        for (int h = 0; h < 2; ++h) {
          const __m256 o =
              ASYM ? _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(base + 64 + 32 * h)))
                   : _mm256_set1_ps((float)L.bias);
          __m256 t = _mm256_add_ps(_mm256_add_ps(c[h][0], c[h][1]), _mm256_add_ps(c[h][2], c[h][3]));
          t = _mm256_fnmadd_ps(o, _mm256_set1_ps(xsum[m * L.groups + g]), t);
          out[h] = _mm256_fmadd_ps(t, _mm256_loadu_ps(sp + 8 * h), out[h]);
        }
      }
      const __m256 v[2] = {_mm256_add_ps(out[0], _mm256_load_ps(bb)), _mm256_add_ps(out[1], _mm256_load_ps(bb + 8))};
      put(Y + m * ldy + n, v, rows, e);
    }
  }
  if (e == Epilogue::gelu)
    for (int64_t m = 0; m < M; ++m) gelu_forward(Y + m * ldy + n_begin, Y + m * ldy + n_begin, n_end - n_begin);
}
#endif
}  // namespace

#if defined(__AVX512F__)
int64_t a8_tile_rows(int bits) { return bits == 8 ? kA8Mt : kA8Mt4; }

void a8_pack_rows(const QuantizedRows& A, const int32_t* asum, const QPackedMatrix& W, int64_t m_begin,
                  int64_t m_end, int32_t* aq, int32_t* as) {
  if (W.bits == 8) {
    if (W.asymmetric) a8_pack_rows<8, true>(A, asum, W, m_begin, m_end, aq, as);
    else a8_pack_rows<8, false>(A, asum, W, m_begin, m_end, aq, as);
  } else {
    if (W.asymmetric) a8_pack_rows<4, true>(A, asum, W, m_begin, m_end, aq, as);
    else a8_pack_rows<4, false>(A, asum, W, m_begin, m_end, aq, as);
  }
}

void quant_matmul_packed_range(const QuantizedRows& A, const int32_t* aq, const int32_t* as, const QPackedMatrix& W,
                               const float* bias, float* Y, int64_t ldy, Epilogue e, int64_t n_begin, int64_t n_end) {
  if (W.bits == 8) {
    if (W.asymmetric) a8_range<8, true>(A, aq, as, W, bias, Y, ldy, e, n_begin, n_end);
    else a8_range<8, false>(A, aq, as, W, bias, Y, ldy, e, n_begin, n_end);
  } else {
    if (W.asymmetric) a8_range<4, true>(A, aq, as, W, bias, Y, ldy, e, n_begin, n_end);
    else a8_range<4, false>(A, aq, as, W, bias, Y, ldy, e, n_begin, n_end);
  }
}

void quant_matmul_range(const QuantizedRows& A, const int32_t* asum, const QPackedMatrix& W, const float* bias,
                        float* Y, int64_t ldy, Epilogue e, int64_t n_begin, int64_t n_end) {
  thread_local IsaScratch<int32_t> aq_buffer, as_buffer;
  int32_t* aq = aq_buffer.reserve(A.M * A.K / 4);
  int32_t* as = as_buffer.reserve(A.M * (A.K / W.group));
  a8_pack_rows(A, asum, W, 0, A.M, aq, as);
  quant_matmul_packed_range(A, aq, as, W, bias, Y, ldy, e, n_begin, n_end);
}
#else
void quant_matmul_range(const QuantizedRows& A, const int32_t* asum, const QPackedMatrix& W, const float* bias,
                        float* Y, int64_t ldy, Epilogue e, int64_t n_begin, int64_t n_end) {
  if (W.bits == 8) {
    if (W.asymmetric)
      a8_range<8, true>(A, asum, W, bias, Y, ldy, e, n_begin, n_end);
    else
      a8_range<8, false>(A, asum, W, bias, Y, ldy, e, n_begin, n_end);
  } else {
    if (W.asymmetric)
      a8_range<4, true>(A, asum, W, bias, Y, ldy, e, n_begin, n_end);
    else
      a8_range<4, false>(A, asum, W, bias, Y, ldy, e, n_begin, n_end);
  }
}
#endif

void quant_matmul_f32_range(const float* X, int64_t ldx, int64_t M, const float* xsum, const QPackedMatrix& W,
                            const float* bias, float* Y, int64_t ldy, Epilogue e, int64_t n_begin, int64_t n_end) {
  if (W.bits == 8) {
    if (W.asymmetric)
      a16_range<8, true>(X, ldx, M, xsum, W, bias, Y, ldy, e, n_begin, n_end);
    else
      a16_range<8, false>(X, ldx, M, xsum, W, bias, Y, ldy, e, n_begin, n_end);
  } else {
    if (W.asymmetric)
      a16_range<4, true>(X, ldx, M, xsum, W, bias, Y, ldy, e, n_begin, n_end);
    else
      a16_range<4, false>(X, ldx, M, xsum, W, bias, Y, ldy, e, n_begin, n_end);
  }
}

}  // namespace gannet::kernels::GANNET_ISA

#if defined(__AVX512F__) && !defined(__clang__)
#pragma GCC pop_options
#endif
