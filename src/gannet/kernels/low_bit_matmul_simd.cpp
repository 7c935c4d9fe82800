// AVX2 body of low_bit_matmul (XTC's binary and ternary products); compiled in the avx2 object only
// (the avx512 object takes low_bit_matmul_avx512_simd.cpp's VNNI body, and CPUs with AVX-512 but
// without VNNI run this one). The planes and the arithmetic are in low_bit_weights.h and
// low_bit_matmul.h.
//
// The activation rows are first arranged (once per block of rows, per thread) so that a weight word
// needs no shuffle: in word j, byte 4i + c holds column 32j + 8c + i (i < 8, c < 4), zero-padded past
// K. A weight word broadcast to the eight dwords and ANDed with 1 << i in every byte of dword i
// then holds, in each byte, the bit of that byte's column; vpminub(., 1) makes it 0 or 1. From
// these, an unsigned multiplier u per byte, shared by all the tile's activation rows, and
// vpmaddubsw(u, a) sums byte pairs u0 a0 + u1 a1 into int16:
//   binary:  u = the sign bit, P = sum_{sign bit set} a, and S = 2 P - sum a;
//   ternary: u = w + 1 in {0, 1, 2} (2 sign + zero, the planes' bits), and S = sum u a - sum a;
// the rows' group sums (sum a) are taken when the rows are arranged. |pair| <= 2 * 2 * 127 = 508,
// added in int16 for at most kChunkWords words (64 * 508 < 2^15), widened by vpmaddwd(., 1) to
// int32. The group sums are exact, so the epilogue (the reference's fma order, 8 output columns per
// vector) gives the reference's results bitwise, whatever the tiling, M or the thread count.
//
// A tile is 8 weight rows x up to kMaxMt activation rows: each weight word is expanded once per
// tile and used for all its activation rows; a few weight rows (kRowsAtOnce) are summed side by
// side over a group, sharing each activation load. Few rows (decode) take the tiles along N, so
// each weight row is read once, in a few interleaved sequential streams. Many rows take blocks of
// activation rows that stay in L1 and pass blocks of weight rows (in L2) over them.
#if !defined(__AVX512F__)
#include <immintrin.h>

#include <cstring>

#include "gannet/core/isa_scratch.h"
#include "gannet/core/simd.h"
#include "gannet/kernels/low_bit_matmul.h"

namespace gannet::kernels::GANNET_ISA {

namespace {
constexpr int kTileRows = 8;          // weight rows per tile: one f32 vector of outputs
constexpr int kMaxMt = 6;             // activation rows per tile (8 ran slower on Zen 3)
constexpr int64_t kChunkWords = 64;   // words summed in int16 before widening
// Weight rows summed side by side in one pass over a group, by activation rows in the tile (Zen 3,
// best of 200 at 3072 x 768: one at a time, decode ran at 60-70% of this speed).
constexpr int kRowsAtOnce[kMaxMt + 1] = {0, 4, 2, 2, 1, 1, 1};
// Arranged activation rows per block: about the L1 cache (Zen 3, 1024 x 3072 x 768: 256 KB blocks
// ran at 2/3 of this speed, 16 KB no faster).
constexpr int64_t kBlockBytes = 32 * 1024;
// Weight rows per pass of a block's tiles (L2): each tile of activation rows takes all of them in
// turn, writing its output rows' columns in order.
constexpr int64_t kWeightBlockBytes = 64 * 1024;

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

inline uint32_t load_word(const uint8_t* p) {
  uint32_t w;
  std::memcpy(&w, p, 4);
  return w;
}

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

struct Consts {
  __m256i bit = _mm256_setr_epi32(0x01010101, 0x02020202, 0x04040404, 0x08080808, 0x10101010, 0x20202020,
                                  0x40404040, (int)0x80808080u);
  __m256i ones8 = _mm256_set1_epi8(1);
  __m256i zero = _mm256_setzero_si256();
};

// The bits of the word at p, one per byte of an arranged activation word (byte 4i + c: bit i of byte
// c, in place).
inline __m256i word_bits(const uint8_t* p, const Consts& c) {
  return _mm256_and_si256(_mm256_set1_epi32((int)load_word(p)), c.bit);
}

// A block of activation rows arranged for the kernels (see the top): row r's word j at
// q + r * words * 32 + 32 j; asum[r * G + g] = the sum of row r's columns in group g.
struct Arranged {
  const int8_t* q;
  const int32_t* asum;
  const float* scale;  // the rows' sa
  int64_t words;
  const int8_t* word(int64_t r, int64_t j) const { return q + (r * words + j) * 32; }
};

// Byte 4i + c of the result is byte 8c + i of v.
inline __m256i arrange_word(__m256i v) {
  const __m256i pairs = _mm256_setr_epi8(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15,  //
                                         0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
  const __m256i quads = _mm256_setr_epi8(0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15,  //
                                         0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15);
  const __m256i t = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(v, pairs), 0xD8);
  return _mm256_shuffle_epi8(t, quads);
}

inline int32_t hsum(__m256i v) {
  __m128i x = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0x4E));
  x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0xB1));
  return _mm_cvtsi128_si32(x);
}

// Arranges rows [m0, m1) of A into q, and their group sums into asum.
void arrange_rows(const QuantizedRows& A, const LowBitWeights& W, int64_t m0, int64_t m1, int8_t* q,
                  int32_t* asum) {
  const int64_t words = (A.K + 31) / 32, full = A.K / 32, wpg = W.group / 32, G = W.groups_per_row();
  const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
  for (int64_t m = m0; m < m1; ++m) {
    const int8_t* a = A.q + m * A.ld;
    int8_t* out = q + (m - m0) * words * 32;
    for (int64_t j = 0; j < full; ++j) _mm256_storeu_si256((__m256i*)(out + 32 * j), arrange_word(load256(a + 32 * j)));
    if (full < words) {
      alignas(32) int8_t tail[32] = {};
      std::memcpy(tail, a + 32 * full, (size_t)(A.K - 32 * full));
      _mm256_storeu_si256((__m256i*)(out + 32 * full), arrange_word(load256(tail)));
    }
    for (int64_t g = 0; g < G; ++g) {
      __m256i sum = _mm256_setzero_si256();
      for (int64_t j = g * wpg; j < min64((g + 1) * wpg, words); ++j)
        sum = _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, load256(out + 32 * j)), ones16));
      asum[(m - m0) * G + g] = hsum(sum);
    }
  }
}

// sums[m][i] (int32 lanes) += the terms of words [j0, j1) of weight row i (planes sign[i],
// nonzero[i]) with arranged rows r0 + m; RB weight rows at once share each activation load.
template <int MT, int RB, bool kTernary>
inline void row_group(const Arranged& a, int64_t r0, const uint8_t* const* sign, const uint8_t* const* nonzero,
                      int64_t j0, int64_t j1, const Consts& c, __m256i (&sums)[MT][RB]) {
  const __m256i ones16 = _mm256_set1_epi16(1);
  const int8_t* x0 = a.word(r0, 0);
  const int64_t stride = a.words * 32;
  for (int64_t jc = j0; jc < j1; jc += kChunkWords) {
    __m256i acc[MT][RB];
    for (int m = 0; m < MT; ++m)
      for (int i = 0; i < RB; ++i) acc[m][i] = _mm256_setzero_si256();
    for (int64_t j = jc, je = min64(jc + kChunkWords, j1); j < je; ++j) {
      __m256i u[RB];  // unsigned byte multipliers: binary the sign bit, ternary w + 1
      for (int i = 0; i < RB; ++i) {
        const __m256i s = _mm256_min_epu8(word_bits(sign[i] + 4 * j, c), c.ones8);
        if (!kTernary) {
          u[i] = s;
        } else {
          const __m256i zero_w = _mm256_cmpeq_epi8(word_bits(nonzero[i] + 4 * j, c), c.zero);
          u[i] = _mm256_or_si256(_mm256_add_epi8(s, s), _mm256_and_si256(zero_w, c.ones8));
        }
      }
      for (int m = 0; m < MT; ++m) {
        const __m256i x = load256(x0 + m * stride + 32 * j);
        for (int i = 0; i < RB; ++i) acc[m][i] = _mm256_add_epi16(acc[m][i], _mm256_maddubs_epi16(u[i], x));
      }
    }
    for (int m = 0; m < MT; ++m)
      for (int i = 0; i < RB; ++i) sums[m][i] = _mm256_add_epi32(sums[m][i], _mm256_madd_epi16(acc[m][i], ones16));
  }
}

// Lane r: the sum of v[r]'s eight lanes.
inline __m256i reduce8(const __m256i* v) {
  const __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
  const __m256i b = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
  return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}

// Y[m0 + m, n0 + r] for m < MT, r < rows (<= 8), rows m0 + m being arranged rows r0 + m.
template <int MT, bool kTernary>
void tile(const Arranged& a, int64_t r0, int64_t m0, const LowBitWeights& W, int64_t n0, int rows, float* Y,
          int64_t ldy) {
  constexpr int RB = kRowsAtOnce[MT];
  const Consts c;
  const int64_t G = W.groups_per_row(), wpg = W.group / 32, rb = W.row_bytes();
  const uint8_t* sign[kTileRows];
  const uint8_t* nonzero[kTileRows];
  alignas(32) int32_t scale_index[kTileRows];
  for (int r = 0; r < kTileRows; ++r) {
    const int64_t n = n0 + min64(r, rows - 1);  // past N: repeat the last row, not stored
    sign[r] = W.sign + n * rb;
    nonzero[r] = kTernary ? W.nonzero + n * rb : nullptr;
    scale_index[r] = (int32_t)(n * G);
  }
  const __m256i index = _mm256_load_si256(reinterpret_cast<const __m256i*>(scale_index));
  __m256 acc[MT];
  for (int m = 0; m < MT; ++m) acc[m] = _mm256_setzero_ps();
  for (int64_t g = 0; g < G; ++g) {
    const int64_t j0 = g * wpg, j1 = min64(j0 + wpg, a.words);  // words wholly past K are skipped
    __m256i part[MT][kTileRows];
    for (int r = 0; r < kTileRows; r += RB) {
      __m256i sums[MT][RB];
      for (int m = 0; m < MT; ++m)
        for (int i = 0; i < RB; ++i) sums[m][i] = _mm256_setzero_si256();
      row_group<MT, RB, kTernary>(a, r0, sign + r, nonzero + r, j0, j1, c, sums);
      for (int m = 0; m < MT; ++m)
        for (int i = 0; i < RB; ++i) part[m][r + i] = sums[m][i];
    }
    const __m256 alpha = _mm256_i32gather_ps(W.scale + g, index, 4);
    for (int m = 0; m < MT; ++m) {
      const __m256i t = reduce8(part[m]);
      const __m256i asum = _mm256_set1_epi32(a.asum[(r0 + m) * G + g]);
      const __m256i S = _mm256_sub_epi32(kTernary ? t : _mm256_add_epi32(t, t), asum);
      acc[m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(S), alpha, acc[m]);
    }
  }
  for (int m = 0; m < MT; ++m) {
    alignas(32) float y[kTileRows];
    _mm256_store_ps(y, _mm256_mul_ps(acc[m], _mm256_set1_ps(a.scale[r0 + m])));
    std::memcpy(Y + (m0 + m) * ldy + n0, y, sizeof(float) * (size_t)rows);
  }
}

template <bool kTernary>
void tile_rows(const Arranged& a, int64_t r0, int64_t m0, int mt, const LowBitWeights& W, int64_t n0, int rows,
               float* Y, int64_t ldy) {
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
  const int64_t words = (A.K + 31) / 32, G = W.groups_per_row();
  const int64_t block = A.M <= kMaxMt ? A.M : (kBlockBytes / (words * 32) / kMaxMt + 1) * kMaxMt;
  const int64_t rows = min64(block, A.M);
  const int64_t weight_block = (kWeightBlockBytes / (W.row_bytes() * W.bits) / kTileRows + 1) * kTileRows;
  int8_t* q = q_buffer.reserve(rows * words * 32);
  int32_t* asum = sum_buffer.reserve(rows * G);
  for (int64_t b = 0; b < A.M; b += block) {
    const int64_t b_end = min64(A.M, b + block);
    arrange_rows(A, W, b, b_end, q, asum);
    const Arranged a{q, asum, A.scale + b, words};
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
#endif  // !__AVX512F__
