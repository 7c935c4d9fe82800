// Vector bodies of low_bit_matmul (XTC's binary and ternary products); compiled once per ISA (see
// core/simd.h). The planes and the arithmetic are in low_bit_weights.h and low_bit_matmul.h.
//
// Both compilations run the same 256-bit AVX2 code (valid under -mavx512* too), so each ISA's
// object runs a path the tests check on any AVX2 machine.
//
// A weight word (32 columns of one row) is expanded in registers to 32 signed bytes s in
// {-1, 0, +1}: broadcast, vpshufb (byte i <- byte i / 8 of the word), AND with 1 << (i % 8), cmpeq 0
// gives 0xFF where the bit is clear; binary s = clear | 1 (+1 where the sign bit is set, else -1),
// ternary s = nonzero & (sign clear | 1). Then a*w = vpsignb(a, s) (activations lie in [-127, 127],
// so the negation is exact), and vpmaddubsw(1, .) sums pairs into int16 (|pair| <= 254), added in
// int16 for at most kChunkWords words (64 * 254 < 2^15), widened by vpmaddwd(., 1) to int32. The
// group sums are exact, so the epilogue (the reference's fma order, 8 output columns per vector)
// gives the reference's results bitwise, whatever the tiling, M or the thread count.
//
// A tile is 8 weight rows x up to kMaxMt activation rows: each weight word is expanded once per
// tile and used for all its activation rows. Few rows (decode) take the tiles along N, one weight
// row after the other within a group (per-row groups: one sequential stream). Many rows take blocks
// of activation rows that stay in L2 and pass every weight tile of the range over them.
#include <immintrin.h>

#include <cstring>

#include "gannet/core/simd.h"
#include "gannet/kernels/low_bit_matmul.h"

namespace gannet::kernels::GANNET_ISA {

namespace {
constexpr int kTileRows = 8;          // weight rows per tile: one f32 vector of outputs
constexpr int kMaxMt = 4;             // activation rows per tile
constexpr int64_t kChunkWords = 64;   // words summed in int16 before widening
constexpr int64_t kBlockBytes = 256 * 1024;  // activation rows per block in the batched order

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

inline uint32_t load_word(const uint8_t* p) {
  uint32_t w;
  std::memcpy(&w, p, 4);
  return w;
}

struct Consts {
  __m256i byte_index = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3,
                                        3, 3, 3, 3, 3, 3, 3);
  __m256i bit = _mm256_set1_epi64x(0x8040201008040201LL);
  __m256i ones8 = _mm256_set1_epi8(1);
  __m256i zero = _mm256_setzero_si256();
};

// 0xFF in byte i where bit i of the word at p is clear, else 0.
inline __m256i clear_bytes(const uint8_t* p, const Consts& c) {
  const __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)load_word(p)), c.byte_index);
  return _mm256_cmpeq_epi8(_mm256_and_si256(b, c.bit), c.zero);
}

// The word's 32 weights as bytes in {-1, 0, +1}.
template <bool kTernary>
inline __m256i weight_signs(const uint8_t* sign, const uint8_t* nonzero, const Consts& c) {
  const __m256i s = _mm256_or_si256(clear_bytes(sign, c), c.ones8);
  if (!kTernary) return s;
  return _mm256_andnot_si256(clear_bytes(nonzero, c), s);
}

// Lane r: the sum of v[r]'s eight lanes.
inline __m256i reduce8(const __m256i* v) {
  const __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
  const __m256i b = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
  return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}

// The activations of one tile: MT rows, and each row's last partial word zero-padded (columns
// [K, padded_K) of A are never read).
template <int MT>
struct TileRows {
  const int8_t* row[MT];
  alignas(32) int8_t tail[MT][32];
  int64_t full_words;  // words wholly below K

  TileRows(const QuantizedRows& A, int64_t m0) : full_words(A.K / 32) {
    const int64_t rest = A.K % 32;
    for (int m = 0; m < MT; ++m) {
      row[m] = A.q + (m0 + m) * A.ld;
      std::memset(tail[m], 0, 32);
      if (rest) std::memcpy(tail[m], row[m] + 32 * full_words, (size_t)rest);
    }
  }
  const int8_t* word(int m, int64_t j) const { return j < full_words ? row[m] + 32 * j : tail[m]; }
};

// sums[m] (int32 lanes) += the products of words [j0, j1) of one weight row with the MT rows.
template <int MT, bool kTernary>
inline void row_group(const TileRows<MT>& a, const uint8_t* sign, const uint8_t* nonzero, int64_t j0, int64_t j1,
                      const Consts& c, __m256i (&sums)[MT]) {
  const __m256i ones16 = _mm256_set1_epi16(1);
  for (int64_t jc = j0; jc < j1; jc += kChunkWords) {
    __m256i acc[MT];
    for (int m = 0; m < MT; ++m) acc[m] = _mm256_setzero_si256();
    for (int64_t j = jc, je = min64(jc + kChunkWords, j1); j < je; ++j) {
      const __m256i s = weight_signs<kTernary>(sign + 4 * j, kTernary ? nonzero + 4 * j : nullptr, c);
      for (int m = 0; m < MT; ++m) {
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.word(m, j)));
        acc[m] = _mm256_add_epi16(acc[m], _mm256_maddubs_epi16(c.ones8, _mm256_sign_epi8(x, s)));
      }
    }
    for (int m = 0; m < MT; ++m) sums[m] = _mm256_add_epi32(sums[m], _mm256_madd_epi16(acc[m], ones16));
  }
}

// Y[m0 + m, n0 + r] for m < MT, r < rows (<= 8): the tile's products.
template <int MT, bool kTernary>
void tile(const QuantizedRows& A, int64_t m0, const LowBitWeights& W, int64_t n0, int rows, float* Y, int64_t ldy) {
  const Consts c;
  const TileRows<MT> a(A, m0);
  const int64_t G = W.groups_per_row(), wpg = W.group / 32, words = (W.K + 31) / 32, rb = W.row_bytes();
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
    const int64_t j0 = g * wpg, j1 = min64(j0 + wpg, words);  // words wholly past K are skipped
    __m256i part[MT][kTileRows];
    for (int r = 0; r < kTileRows; ++r) {
      __m256i sums[MT];
      for (int m = 0; m < MT; ++m) sums[m] = _mm256_setzero_si256();
      row_group<MT, kTernary>(a, sign[r], nonzero[r], j0, j1, c, sums);
      for (int m = 0; m < MT; ++m) part[m][r] = sums[m];
    }
    const __m256 alpha = _mm256_i32gather_ps(W.scale + g, index, 4);
    for (int m = 0; m < MT; ++m) acc[m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(reduce8(part[m])), alpha, acc[m]);
  }
  for (int m = 0; m < MT; ++m) {
    alignas(32) float y[kTileRows];
    _mm256_store_ps(y, _mm256_mul_ps(acc[m], _mm256_set1_ps(A.scale[m0 + m])));
    std::memcpy(Y + (m0 + m) * ldy + n0, y, sizeof(float) * (size_t)rows);
  }
}

template <bool kTernary>
void tile_rows(const QuantizedRows& A, int64_t m0, int mt, const LowBitWeights& W, int64_t n0, int rows, float* Y,
               int64_t ldy) {
  switch (mt) {
    case 4: return tile<4, kTernary>(A, m0, W, n0, rows, Y, ldy);
    case 3: return tile<3, kTernary>(A, m0, W, n0, rows, Y, ldy);
    case 2: return tile<2, kTernary>(A, m0, W, n0, rows, Y, ldy);
    default: return tile<1, kTernary>(A, m0, W, n0, rows, Y, ldy);
  }
}

template <bool kTernary>
void range(const QuantizedRows& A, const LowBitWeights& W, float* Y, int64_t ldy, int64_t n_begin, int64_t n_end) {
  auto n_tiles = [&](int64_t m0, int mt) {
    for (int64_t n = n_begin; n < n_end; n += kTileRows)
      tile_rows<kTernary>(A, m0, mt, W, n, (int)min64(kTileRows, n_end - n), Y, ldy);
  };
  if (A.M <= 0 || n_begin >= n_end) return;
  if (A.M <= kMaxMt) return n_tiles(0, (int)A.M);  // decode: each weight row streamed once
  const int64_t block = (kBlockBytes / (W.padded_K + 1) / kMaxMt + 1) * kMaxMt;
  for (int64_t b = 0; b < A.M; b += block) {
    const int64_t b_end = min64(A.M, b + block);
    for (int64_t n = n_begin; n < n_end; n += kTileRows)
      for (int64_t m = b; m < b_end; m += kMaxMt)
        tile_rows<kTernary>(A, m, (int)min64(kMaxMt, b_end - m), W, n, (int)min64(kTileRows, n_end - n), Y, ldy);
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
