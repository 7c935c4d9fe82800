// AVX-512 body of low_bit_matmul (XTC's binary and ternary products), with VNNI, VBMI and GFNI
// (Ice Lake and later, Zen 4 and later). Compiled in the avx512 object only (the avx2 object takes
// low_bit_matmul_simd.cpp's 256-bit body); the dispatcher runs it where cpu_has_avx512_vnni() and
// cpu_has_avx512_vbmi_gfni(). The planes and the arithmetic are in low_bit_weights.h and
// low_bit_matmul.h.
//
// A chunk is 64 columns (bit k of the plane's 64 bits there is column k). Its bits are expanded
// into 64 unsigned byte multipliers u, shared by every activation row of the tile:
//   binary:  u = the sign bit, and S = 2 sum u a - sum a;
//   ternary: u = w + 1 in {0, 1, 2} (2 where the sign bit is set, 1 where the nonzero bit is not),
//            and S = sum u a - sum a;
// by masked byte moves (the bits loaded as a mask register) for a tile of several activation rows,
// and for one row (decode) by picking bytes from whole 64-byte blocks of the planes (vpermb or
// vpermi2b) and vgf2p8affineqb as a bit matrix (see BlockPicks). vpdpbusd adds u . a four bytes
// at a time into 16 int32 lanes, exactly (|lane| <= 2 * 128 * group / 16). A group whose width is
// an odd number of 32-column words ends in a half chunk: its 32 bits, and for ternary no zero
// multipliers past them. The rows' group sums (sum a) are taken when the rows are copied
// (zero-padded to whole chunks), so the inner sums are exact and the epilogue (the reference's fma
// order, 16 output columns per vector) gives the reference's results bitwise, whatever the tiling,
// M or the thread count.
//
// A tile is 16 weight rows x up to kMaxMt activation rows; a few weight rows (kRowsAtOnce) are
// summed side by side over a group, each expansion feeding every activation row and each
// activation load every weight row of the pass. The per-row int32 vectors of a group are reduced
// 16 at a time by a transposing sum. Few rows (decode) take the tiles along N, so that each weight
// row is read once; many rows take blocks of rows that stay in L1 and pass blocks of weight rows
// (in L2) over them, as the 256-bit body does.
#if defined(__AVX512F__)
#include <immintrin.h>

#include <cstring>

#include "gannet/core/isa_scratch.h"
#include "gannet/kernels/low_bit_matmul.h"

namespace gannet::kernels::GANNET_ISA {

namespace {
constexpr int kTileRows = 16;  // weight rows per tile: one f32 vector of outputs
constexpr int kMaxMt = 6;      // activation rows per tile
// Weight rows summed side by side, by activation rows in the tile (accumulators MT x RB, the
// multipliers RB and one activation chunk within the 32 registers).
constexpr int kRowsAtOnce[kMaxMt + 1] = {0, 0, 8, 4, 4, 4, 4};  // one row: one_row_group
constexpr int64_t kBlockBytes = 32 * 1024;        // copied activation rows per block (L1)
constexpr int64_t kWeightBlockBytes = 64 * 1024;  // weight rows per pass of a block's tiles (L2)
constexpr int64_t kPrefetchTiles = 2;             // how far ahead the planes are prefetched

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// acc += u8 u . s8 x by fours. Written as asm: VNNI without a target switch, and GCC keeps each
// accumulator in one register (see quant_matmul_simd.cpp).
inline __m512i dpbusd(__m512i acc, __m512i u, __m512i x) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(x));
  return acc;
}

// The plane's bits for the chunk at p: 64, or 32 for a half chunk (the upper bits 0).
template <bool kHalf>
inline uint64_t chunk_bits(const uint8_t* p) {
  if constexpr (kHalf) {
    uint32_t w;
    std::memcpy(&w, p, 4);
    return w;
  } else {
    uint64_t w;
    std::memcpy(&w, p, 8);
    return w;
  }
}

// Activation rows copied for the kernels: row r at q + r * stride, zero past K up to the stride (a
// multiple of 64 at least padded_K + 32); asum[r * G + g] the sum of row r's columns in group g.
struct Rows {
  const int8_t* q;
  const int32_t* asum;
  const float* scale;  // the rows' sa
  int64_t stride;
};

// A chunk is read as 64 bytes from any multiple of 32 columns below padded_K, a half chunk's upper
// half included (its multipliers are 0 there): the last one ends at padded_K + 32. (ASan found the
// earlier round_up(padded_K, 64) short by 32 bytes where padded_K is a multiple of 64 and a group an
// odd number of words.)
int64_t row_stride(const LowBitWeights& W) { return (W.padded_K + 32 + 63) / 64 * 64; }

// Copies rows [m0, m1) of A into q and their group sums into asum.
void copy_rows(const QuantizedRows& A, const LowBitWeights& W, int64_t m0, int64_t m1, int64_t stride, int8_t* q,
               int32_t* asum) {
  const int64_t G = W.groups_per_row(), pieces = W.group / 32;
  const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
  for (int64_t m = m0; m < m1; ++m) {
    int8_t* out = q + (m - m0) * stride;
    std::memcpy(out, A.q + m * A.ld, (size_t)A.K);
    std::memset(out + A.K, 0, (size_t)(stride - A.K));
    for (int64_t g = 0; g < G; ++g) {
      __m256i sum = _mm256_setzero_si256();
      for (int64_t j = g * pieces; j < (g + 1) * pieces; ++j) {
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(out + 32 * j));
        sum = _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, x), ones16));
      }
      __m128i s = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
      s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
      s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
      asum[(m - m0) * G + g] = _mm_cvtsi128_si32(s);
    }
  }
}

// Byte j of x times the 8 x 8 bit matrix of qword j / 8 of a, plus FLIP (vgf2p8affineqb, GFNI):
// bit i of the result is the parity of (a's byte 7 - i) & x, xor bit i of FLIP.
template <int FLIP>
inline __m512i bit_matrix(__m512i x, __m512i a) {
  __m512i r;
  asm("vgf2p8affineqb %3, %2, %1, %0" : "=v"(r) : "v"(x), "v"(a), "i"(FLIP));
  return r;
}

// A chunk's multipliers by masked byte moves, the bits loaded as mask registers.
template <bool kTernary, bool kHalf>
inline __m512i expand_by_masks(const uint8_t* sign, const uint8_t* nonzero) {
  const __m512i ones = _mm512_set1_epi8(1), twos = _mm512_set1_epi8(2);
  const __mmask64 s = _cvtu64_mask64(chunk_bits<kHalf>(sign));
  if constexpr (!kTernary) {
    return _mm512_maskz_mov_epi8(s, ones);
  } else {
    const __mmask64 valid = _cvtu64_mask64(kHalf ? 0xFFFFFFFFull : ~0ull);
    const __mmask64 zero_w = _kandn_mask64(_cvtu64_mask64(chunk_bits<kHalf>(nonzero)), valid);
    return _mm512_mask_mov_epi8(_mm512_maskz_mov_epi8(zero_w, ones), s, twos);
  }
}

// sums[m][i] += the terms of the chunk at column k of weight row i (planes sign[i], nonzero[i])
// with copied rows x0 + m * stride.
template <int MT, int RB, bool kTernary, bool kHalf>
inline void chunk(const int8_t* x0, int64_t stride, const uint8_t* const* sign, const uint8_t* const* nonzero,
                  int64_t k, __m512i (&sums)[MT][RB]) {
  __m512i u[RB];
  for (int i = 0; i < RB; ++i)
    u[i] = expand_by_masks<kTernary, kHalf>(sign[i] + k / 8, kTernary ? nonzero[i] + k / 8 : nullptr);
  for (int m = 0; m < MT; ++m) {
    const __m512i x = _mm512_loadu_si512(x0 + m * stride + k);
    for (int i = 0; i < RB; ++i) sums[m][i] = dpbusd(sums[m][i], u[i], x);
  }
}

// One activation row (decode): a weight row's planes are loaded 64 bytes (8 chunks) at a time and
// each chunk's multipliers made from those registers in two instructions: vpermb (binary) or
// vpermi2b (ternary, from both planes) puts the plane's byte c' of the chunk (columns 8c' .. 8c' + 7)
// in byte 7 of qword c' (ternary: the sign byte in byte 6, the nonzero byte in byte 7), the other
// bytes zeroed; vgf2p8affineqb against x = 1 << (j % 8) in byte j then makes byte j bit j % 8 of
// that byte: binary u = sign; ternary u = 2 sign + not nonzero (bit 0 flipped by the instruction's
// constant). The row's bytes are read in order, one load per 8 chunks.
inline __m512i pick_bytes(__m512i idx, __m512i table, __mmask64 keep) {
  __m512i r;
  asm("vpermb %2, %1, %0%{%3%}%{z%}" : "=v"(r) : "v"(idx), "v"(table), "Yk"(keep));
  return r;
}
inline __m512i pick_bytes2(__m512i idx, __m512i a, __m512i b, __mmask64 keep) {
  asm("vpermi2b %2, %1, %0%{%3%}%{z%}" : "+v"(idx) : "v"(a), "v"(b), "Yk"(keep));
  return idx;
}

// Chunk c of a 64-byte block: binary, byte 7 of qword q takes the plane's byte 8c + q; ternary,
// byte 6 the sign plane's (table a) and byte 7 the nonzero plane's (table b, indices from 64).
template <bool kTernary>
struct BlockPicks {
  __m512i x = _mm512_set1_epi64((long long)0x8040201008040201ull);
  __mmask64 keep = _cvtu64_mask64(kTernary ? 0xC0C0C0C0C0C0C0C0ull : 0x8080808080808080ull);
  __m512i index[8];
  BlockPicks() {
    for (int c = 0; c < 8; ++c) {
      const __m512i q = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
      const __m512i from = _mm512_add_epi64(q, _mm512_set1_epi64(8 * c));
      // byte 6: from (sign), byte 7: 64 + from (nonzero); binary: byte 7: from
      const __m512i from_b = _mm512_add_epi64(from, _mm512_set1_epi64(64));
      index[c] = kTernary ? _mm512_or_si512(_mm512_slli_epi64(from, 48), _mm512_slli_epi64(from_b, 56))
                          : _mm512_slli_epi64(from, 56);
    }
  }
};

// acc[c % 4] += chunk c's terms for the CHUNKS chunks of a block.
template <bool kTernary, int CHUNKS>
inline void block_chunks(const int8_t* xb, __m512i S, __m512i Z, const BlockPicks<kTernary>& p, __m512i (&acc)[4]) {
  for (int c = 0; c < CHUNKS; ++c) {
    const __m512i u = kTernary ? bit_matrix<1>(p.x, pick_bytes2(p.index[c], S, Z, p.keep))
                               : bit_matrix<0>(p.x, pick_bytes(p.index[c], S, p.keep));
    acc[c & 3] = dpbusd(acc[c & 3], u, _mm512_loadu_si512(xb + 64 * c));
  }
}

// The int32 lanes of the terms of columns [k0, k1) (multiples of 32) of one weight row with the
// copied row x.
template <bool kTernary>
inline __m512i one_row_group(const int8_t* x, const uint8_t* sign, const uint8_t* nonzero, int64_t k0, int64_t k1,
                             const BlockPicks<kTernary>& p) {
  __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
  const int64_t bytes = (k1 - k0) / 8;
  const uint8_t* s0 = sign + k0 / 8;
  const uint8_t* z0 = kTernary ? nonzero + k0 / 8 : nullptr;
  for (int64_t b = 0; b < bytes; b += 64) {
    const int64_t n = min64(64, bytes - b);  // a multiple of 4
    const __mmask64 in = _cvtu64_mask64(n == 64 ? ~0ull : (1ull << n) - 1);
    const __m512i S = _mm512_maskz_loadu_epi8(in, s0 + b);
    // Past the group: sign 0, nonzero 1, so that u = 0 there.
    const __m512i Z = kTernary ? _mm512_mask_loadu_epi8(_mm512_set1_epi8(-1), in, z0 + b) : S;
    const int8_t* xb = x + k0 + 8 * b;
    if (n == 64)
      block_chunks<kTernary, 8>(xb, S, Z, p, acc);
    else
      switch ((n + 7) / 8) {
        case 7: block_chunks<kTernary, 7>(xb, S, Z, p, acc); break;
        case 6: block_chunks<kTernary, 6>(xb, S, Z, p, acc); break;
        case 5: block_chunks<kTernary, 5>(xb, S, Z, p, acc); break;
        case 4: block_chunks<kTernary, 4>(xb, S, Z, p, acc); break;
        case 3: block_chunks<kTernary, 3>(xb, S, Z, p, acc); break;
        case 2: block_chunks<kTernary, 2>(xb, S, Z, p, acc); break;
        default: block_chunks<kTernary, 1>(xb, S, Z, p, acc); break;
      }
  }
  return _mm512_add_epi32(_mm512_add_epi32(acc[0], acc[1]), _mm512_add_epi32(acc[2], acc[3]));
}

// sums[m][i] (int32 lanes) = the terms of columns [k0, k1) (multiples of 32) of weight row i with
// copied rows r0 + m.
template <int MT, int RB, bool kTernary>
inline void row_group(const Rows& a, int64_t r0, const uint8_t* const* sign, const uint8_t* const* nonzero,
                      int64_t k0, int64_t k1, __m512i (&sums)[MT][RB]) {
  for (int m = 0; m < MT; ++m)
    for (int i = 0; i < RB; ++i) sums[m][i] = _mm512_setzero_si512();
  const int8_t* x0 = a.q + r0 * a.stride;
  int64_t k = k0;
  for (; k + 64 <= k1; k += 64) chunk<MT, RB, kTernary, false>(x0, a.stride, sign, nonzero, k, sums);
  if (k < k1) chunk<MT, RB, kTernary, true>(x0, a.stride, sign, nonzero, k, sums);
}

// Per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3]; then [A, B, C, D] of two such; then the lanes.
inline __m512i pair_sums32(__m512i a, __m512i b) {
  return _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
}
inline __m512i pair_sums64(__m512i a, __m512i b) {
  return _mm512_add_epi32(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b));
}
inline __m512i lane_sums(__m512i a, __m512i b) {
  return _mm512_add_epi32(_mm512_shuffle_i32x4(a, b, 0x88), _mm512_shuffle_i32x4(a, b, 0xDD));
}

// Lane r: the sum of v[r]'s 16 lanes.
inline __m512i reduce16(const __m512i* v) {
  __m512i p[8], q[4];
  for (int i = 0; i < 8; ++i) p[i] = pair_sums32(v[2 * i], v[2 * i + 1]);
  // q[i]: in every 128-bit lane, partial sums of rows 4i .. 4i + 3 in order
  for (int i = 0; i < 4; ++i) q[i] = pair_sums64(p[2 * i], p[2 * i + 1]);
  // Lanes [q0 (0+1), q0 (2+3), q1 (0+1), q1 (2+3)], then their pairs.
  return lane_sums(lane_sums(q[0], q[1]), lane_sums(q[2], q[3]));
}

// Prefetches the planes of the tile kPrefetchTiles ahead of the one at row n0 (its rows are
// consecutive): the loads of a tile jump between its rows, which the hardware prefetchers follow
// late (decode from L3 or memory ran at half the speed without this).
inline void prefetch_ahead(const LowBitWeights& W, int64_t n0, bool ternary) {
  const int64_t n = n0 + kPrefetchTiles * kTileRows, rb = W.row_bytes();
  if (n >= W.N) return;
  const int64_t bytes = min64(kTileRows, W.N - n) * rb;
  for (int64_t off = 0; off < bytes; off += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(W.sign + n * rb + off), _MM_HINT_T0);
    if (ternary) _mm_prefetch(reinterpret_cast<const char*>(W.nonzero + n * rb + off), _MM_HINT_T0);
  }
}

// Y[m0 + m, n0 + r] for m < MT, r < rows (<= 16), rows m0 + m being copied rows r0 + m.
template <int MT, bool kTernary>
void tile(const Rows& a, int64_t r0, int64_t m0, const LowBitWeights& W, int64_t n0, int rows, float* Y,
          int64_t ldy) {
  constexpr int RB = kRowsAtOnce[MT];
  const int64_t G = W.groups_per_row(), rb = W.row_bytes(), k_end = (W.K + 31) / 32 * 32;
  const uint8_t* sign[kTileRows];
  const uint8_t* nonzero[kTileRows];
  alignas(64) int32_t scale_index[kTileRows];
  for (int r = 0; r < kTileRows; ++r) {
    const int64_t n = n0 + min64(r, rows - 1);  // past N: repeat the last row, not stored
    sign[r] = W.sign + n * rb;
    nonzero[r] = kTernary ? W.nonzero + n * rb : nullptr;
    scale_index[r] = (int32_t)(n * G);
  }
  const __m512i index = _mm512_load_si512(scale_index);
  const BlockPicks<kTernary> picks;
  if (MT == 1) prefetch_ahead(W, n0, kTernary);
  __m512 acc[MT];
  for (int m = 0; m < MT; ++m) acc[m] = _mm512_setzero_ps();
  for (int64_t g = 0; g < G; ++g) {
    const int64_t k0 = g * W.group, k1 = min64(k0 + W.group, k_end);  // words wholly past K skipped
    __m512i part[MT][kTileRows];
    if constexpr (MT == 1) {
      for (int r = 0; r < kTileRows; ++r)
        part[0][r] = one_row_group<kTernary>(a.q + r0 * a.stride, sign[r], nonzero[r], k0, k1, picks);
    } else {
      for (int r = 0; r < kTileRows; r += RB) {
        __m512i sums[MT][RB];
        row_group<MT, RB, kTernary>(a, r0, sign + r, nonzero + r, k0, k1, sums);
        for (int m = 0; m < MT; ++m)
          for (int i = 0; i < RB; ++i) part[m][r + i] = sums[m][i];
      }
    }
    const __m512 alpha = _mm512_i32gather_ps(index, W.scale + g, 4);
    for (int m = 0; m < MT; ++m) {
      const __m512i t = reduce16(part[m]);
      const __m512i asum = _mm512_set1_epi32(a.asum[(r0 + m) * G + g]);
      const __m512i S = _mm512_sub_epi32(kTernary ? t : _mm512_add_epi32(t, t), asum);
      acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(S), alpha, acc[m]);
    }
  }
  const __mmask16 store = (__mmask16)((1u << rows) - 1u);
  for (int m = 0; m < MT; ++m)
    _mm512_mask_storeu_ps(Y + (m0 + m) * ldy + n0, store, _mm512_mul_ps(acc[m], _mm512_set1_ps(a.scale[r0 + m])));
}

template <bool kTernary>
void tile_rows(const Rows& a, int64_t r0, int64_t m0, int mt, const LowBitWeights& W, int64_t n0, int rows, float* Y,
               int64_t ldy) {
  switch (mt) {
    case 6: return tile<6, kTernary>(a, r0, m0, W, n0, rows, Y, ldy);
    case 5: return tile<5, kTernary>(a, r0, m0, W, n0, rows, Y, ldy);
    case 4: return tile<4, kTernary>(a, r0, m0, W, n0, rows, Y, ldy);
    case 3: return tile<3, kTernary>(a, r0, m0, W, n0, rows, Y, ldy);
    case 2: return tile<2, kTernary>(a, r0, m0, W, n0, rows, Y, ldy);
    default: return tile<1, kTernary>(a, r0, m0, W, n0, rows, Y, ldy);
  }
}

// Few rows (<= kMaxMt, one block): the tiles along N, each weight row streamed once. Many rows:
// blocks of rows that stay in L1, each tile of a block passing over a block of weight rows (L2)
// before the next tile, for every weight block of the range.
template <bool kTernary>
void range(const QuantizedRows& A, const LowBitWeights& W, float* Y, int64_t ldy, int64_t n_begin, int64_t n_end) {
  if (A.M <= 0 || n_begin >= n_end) return;
  thread_local IsaScratch<int8_t> q_buffer;
  thread_local IsaScratch<int32_t> sum_buffer;
  const int64_t stride = row_stride(W), G = W.groups_per_row();
  const int64_t block = A.M <= kMaxMt ? A.M : (kBlockBytes / stride / kMaxMt + 1) * kMaxMt;
  const int64_t rows = min64(block, A.M);
  const int64_t weight_block = (kWeightBlockBytes / (W.row_bytes() * W.bits) / kTileRows + 1) * kTileRows;
  int8_t* q = q_buffer.reserve(rows * stride);
  int32_t* asum = sum_buffer.reserve(rows * G);
  for (int64_t b = 0; b < A.M; b += block) {
    const int64_t b_end = min64(A.M, b + block);
    copy_rows(A, W, b, b_end, stride, q, asum);
    const Rows a{q, asum, A.scale + b, stride};
    for (int64_t nb = n_begin; nb < n_end; nb += weight_block)
      for (int64_t m = b; m < b_end; m += kMaxMt)
        for (int64_t n = nb; n < min64(nb + weight_block, n_end); n += kTileRows)
          tile_rows<kTernary>(a, m - b, m, (int)min64(kMaxMt, b_end - m), W, n, (int)min64(kTileRows, n_end - n), Y,
                              ldy);
  }
}
}  // namespace

void low_bit_matmul_range(const QuantizedRows& A, const LowBitWeights& W, float* Y, int64_t ldy, int64_t n_begin,
                          int64_t n_end) {
  if (W.bits == 2)
    range<true>(A, W, Y, ldy, n_begin, n_end);
  else
    range<false>(A, W, Y, ldy, n_begin, n_end);
}

}  // namespace gannet::kernels::GANNET_ISA
#endif  // __AVX512F__
