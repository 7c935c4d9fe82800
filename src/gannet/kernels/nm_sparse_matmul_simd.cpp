// Vector bodies of nm_sparse_matmul (NxMiFormer's n:4 sparse int8 product). The packed layout and
// the arithmetic are in nm_sparse_matmul.h.
//
// AVX-512 (the avx512 object, with VNNI and VBMI):
// A step is 4 kept entries of each of a block's 16 rows: one vpdpbusd of 16 lanes, the rows'
// 4 kept values (s8) against the 4 activations each gathers (u8, a + 128). The 16 position bytes of
// a step become vpermb indices in four instructions: vpmovzxwq puts rows 2q and 2q + 1's bytes in
// qword q, vpmultishiftqb moves position i of row r to byte 4r + i, a mask keeps its 2 bits, and
// adding the run's offset (4 (i / n)) makes it the column within the step. Each activation row then
// loads 64 bytes holding the step's columns and vpermb gathers every row's 4 activations from them.
// The int32 sums less 128 sum(q) are exact, and the epilogue is the reference's fma order, so the
// results are the reference's bitwise.
// Up to 6 activation rows (decode) each tile makes its steps' indices and 128 sum(q) (one more
// vpdpbusd a step) as it goes, and loads the window from the step's first column. With more rows
// the call makes both once per block (make_block): the indices then point into the aligned 64
// bytes around the step's columns (the copied rows start 64-byte aligned, so no window load splits
// two cache lines), and a tile of 10 rows runs 3 instructions per vpdpbusd (window load, vpermb,
// vpdpbusd): half the vpdpbusd of the dense product, each with one load and one vpermb more.
#if defined(__AVX512F__)
#include <immintrin.h>

#include "gannet/core/isa_scratch.h"
#include "gannet/kernels/nm_sparse_matmul.h"

namespace gannet::kernels::GANNET_ISA {

namespace {
constexpr int kMaxMt = 6;           // activation rows per tile making its own step indices
constexpr int kMadeMt = 10;         // on made indices (10 accumulators and 10 sums fit; 12 spill)
constexpr int kPrefetchGroups = 4;  // how far ahead one row's product prefetches the stream

inline __m512i dpbusd(__m512i acc, __m512i u, __m512i x) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(x));
  return acc;
}
inline __m512i permute_bytes(__m512i idx, __m512i table) {
  __m512i r;
  asm("vpermb %2, %1, %0" : "=v"(r) : "v"(idx), "v"(table));
  return r;
}
inline __m512i multishift(__m512i control, __m512i data) {
  __m512i r;
  asm("vpmultishiftqb %2, %1, %0" : "=v"(r) : "v"(control), "v"(data));
  return r;
}

// Per byte j = 4r + i of a step: the bit offset of row r's position i in its qword (rows 2q and
// 2q + 1 share qword q: r % 2 selects the byte), and the offset of entry i's run in the step.
struct StepConstants {
  __m512i control, run_offset, two_bits = _mm512_set1_epi8(3), bias = _mm512_set1_epi8((char)0x80);
  explicit StepConstants(int n) {
    alignas(64) int8_t c[64], o[64];
    for (int j = 0; j < 64; ++j) {
      const int r = j / 4, i = j % 4;
      c[j] = (int8_t)(8 * (r % 2) + 2 * i);
      o[j] = (int8_t)(4 * (i / n));
    }
    control = _mm512_load_si512(c);
    run_offset = _mm512_load_si512(o);
  }
};

// Y[m0 + m, 16 b + r] for m < MT, r < rows.
// Y[m0 + m, 16 b + r] = fma(f[m] lane r, sa[m], bias[16 b + r] or 0) for m < MT, r < rows.
template <int MT>
void store_tile(const GatherRows& A, int64_t m0, int rows, int64_t b, const __m512* f, const float* bias, float* Y,
                int64_t ldy) {
  const __mmask16 store = (__mmask16)((1u << rows) - 1u);
  const __m512 b_vec = bias ? _mm512_maskz_loadu_ps(store, bias + 16 * b) : _mm512_setzero_ps();
  for (int m = 0; m < MT; ++m)
    _mm512_mask_storeu_ps(Y + (m0 + m) * ldy + 16 * b, store,
                          _mm512_fmadd_ps(f[m], _mm512_set1_ps(A.scale[m0 + m]), b_vec));
}

// The vpermb indices of a step of a block, from its 16 position bytes.
inline __m512i step_index(const uint8_t* positions, const StepConstants& k) {
  const __m512i codes = _mm512_cvtepu16_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(positions)));
  return _mm512_add_epi8(_mm512_and_si512(multishift(k.control, codes), k.two_bits), k.run_offset);
}

// Y[m0 + m, 16 b + r] for m < MT, r < rows, making each step's indices from its positions (few
// rows: the decode product).
template <int MT>
void tile(const GatherRows& A, int64_t m0, const NmSparsePacked& W, int64_t b, const StepConstants& k, const float* bias,
          float* Y, int64_t ldy) {
  constexpr int kChains = MT == 1 ? 4 : MT == 2 ? 2 : 1;
  const int rows = (int)(W.N - 16 * b < 16 ? W.N - 16 * b : 16);
  const int64_t G = W.K / W.group, steps = W.steps_per_group(), step_columns = 16 / W.n;
  const uint8_t* block = static_cast<const uint8_t*>(W.data) + b * W.block_bytes();
  __m512 f[MT];
  for (int m = 0; m < MT; ++m) f[m] = _mm512_setzero_ps();
  for (int64_t g = 0; g < G; ++g) {
    const uint8_t* gp = block + g * W.group_bytes();
    // kChains accumulators per row over alternate steps: few rows would otherwise wait on
    // vpdpbusd's latency step after step (integer sums: any order is exact).
    __m512i acc[MT][kChains];
    for (int m = 0; m < MT; ++m)
      for (int c = 0; c < kChains; ++c) acc[m][c] = _mm512_setzero_si512();
    __m512i bias_sum = _mm512_setzero_si512();  // 128 sum(q): what the biased activations add
    const uint8_t* values = gp + 64;
    const uint8_t* positions = values + steps * 64;
    const uint8_t* x0 = A.x + m0 * A.stride + g * W.group;
    if (MT == 1)  // one row streams the blocks: fetch a few groups ahead (the next block's past the end)
      for (int64_t off = 0; off < W.group_bytes(); off += 64)
        _mm_prefetch(reinterpret_cast<const char*>(gp + kPrefetchGroups * W.group_bytes() + off), _MM_HINT_T0);
    for (int64_t s = 0; s < steps; ++s) {
      const __m512i index = step_index(positions + 16 * s, k);
      const __m512i w = _mm512_load_si512(values + 64 * s);
      bias_sum = dpbusd(bias_sum, k.bias, w);
      const int c = (int)(s % kChains);
      for (int m = 0; m < MT; ++m) {
        const __m512i window = _mm512_loadu_si512(x0 + m * A.stride + s * step_columns);
        acc[m][c] = dpbusd(acc[m][c], permute_bytes(index, window), w);
      }
    }
    const __m512 scale = _mm512_load_ps(gp);
    for (int m = 0; m < MT; ++m) {
      __m512i sum = _mm512_sub_epi32(acc[m][0], bias_sum);
      for (int c = 1; c < kChains; ++c) sum = _mm512_add_epi32(sum, acc[m][c]);
      f[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), scale, f[m]);
    }
  }
  store_tile<MT>(A, m0, rows, b, f, bias, Y, ldy);
}

// What the batched product makes once per call for each block, group by group: the group's
// 128 sum(q) per row (64 bytes), then every step's vpermb indices into the aligned 64 bytes around
// the step's columns (the activation rows start 64-byte aligned: no load splits two lines).
struct MadeBlock {
  const uint8_t* data;
  int64_t group_bytes;
};
int64_t made_group_bytes(const NmSparsePacked& W) { return 64 + W.steps_per_group() * 64; }

void make_block(const NmSparsePacked& W, int64_t b, const StepConstants& k, uint8_t* out) {
  const int64_t steps = W.steps_per_group();
  for (int64_t g = 0; g < W.K / W.group; ++g) {
    const uint8_t* gp = static_cast<const uint8_t*>(W.data) + b * W.block_bytes() + g * W.group_bytes();
    uint8_t* o = out + g * made_group_bytes(W);
    __m512i bias_sum = _mm512_setzero_si512();
    for (int64_t s = 0; s < steps; ++s) {
      bias_sum = dpbusd(bias_sum, k.bias, _mm512_load_si512(gp + 64 + 64 * s));
      const int64_t line_offset = (g * W.group + s * 16 / W.n) % 64;
      _mm512_store_si512(o + 64 + 64 * s, _mm512_add_epi8(step_index(gp + 64 + steps * 64 + 16 * s, k),
                                                           _mm512_set1_epi8((char)line_offset)));
    }
    _mm512_store_si512(o, bias_sum);
  }
}

// Y[m0 + m, 16 b + r] for m < MT, r < rows, from block b's made indices and sums.
template <int MT>
void tile_made(const GatherRows& A, int64_t m0, const NmSparsePacked& W, int64_t b, const uint8_t* made,
               const float* bias, float* Y, int64_t ldy) {
  const int64_t G = W.K / W.group, steps = W.steps_per_group(), step_columns = 16 / W.n;
  const uint8_t* block = static_cast<const uint8_t*>(W.data) + b * W.block_bytes();
  __m512 f[MT];
  for (int m = 0; m < MT; ++m) f[m] = _mm512_setzero_ps();
  for (int64_t g = 0; g < G; ++g) {
    const uint8_t* gp = block + g * W.group_bytes();
    const uint8_t* made_group = made + g * made_group_bytes(W);
    __m512i acc[MT];
    for (int m = 0; m < MT; ++m) acc[m] = _mm512_setzero_si512();
    const uint8_t* x0 = A.x + m0 * A.stride + g * W.group;
    for (int64_t s = 0; s < steps; ++s) {
      const __m512i index = _mm512_load_si512(made_group + 64 + 64 * s);
      const __m512i w = _mm512_load_si512(gp + 64 + 64 * s);
      const uintptr_t line = ((uintptr_t)(x0 + s * step_columns)) & ~uintptr_t(63);
      for (int m = 0; m < MT; ++m) {
        const __m512i window = _mm512_load_si512(reinterpret_cast<const void*>(line + m * A.stride));
        acc[m] = dpbusd(acc[m], permute_bytes(index, window), w);
      }
    }
    const __m512 scale = _mm512_load_ps(gp);
    const __m512i bias_sum = _mm512_load_si512(made_group);
    for (int m = 0; m < MT; ++m)
      f[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[m], bias_sum)), scale, f[m]);
  }
  store_tile<MT>(A, m0, (int)(W.N - 16 * b < 16 ? W.N - 16 * b : 16), b, f, bias, Y, ldy);
}

// body.template operator()<MT>() for the tile height mt in [1, kMax], a template argument.
template <int kMax, class Body>
void with_tile_rows(int mt, const Body& body) {
  if constexpr (kMax > 1)
    if (mt < kMax) return with_tile_rows<kMax - 1>(mt, body);
  body.template operator()<kMax>();
}
}  // namespace

void nm_sparse_matmul_range(const GatherRows& A, const NmSparsePacked& W, const float* bias, float* Y, int64_t ldy,
                            int64_t b_begin, int64_t b_end) {
  const StepConstants k(W.n);
  if (A.M <= kMaxMt) {  // one tile of rows: each step's indices made where it runs
    for (int64_t b = b_begin; b < b_end; ++b)
      with_tile_rows<kMaxMt>((int)A.M, [&]<int MT>() { tile<MT>(A, 0, W, b, k, bias, Y, ldy); });
    return;
  }
  thread_local IsaScratch<uint8_t> scratch;
  const int64_t block_bytes = W.K / W.group * made_group_bytes(W);
  uint8_t* made = scratch.reserve((b_end - b_begin) * block_bytes);
  for (int64_t b = b_begin; b < b_end; ++b) make_block(W, b, k, made + (b - b_begin) * block_bytes);
  for (int64_t m = 0; m < A.M; m += kMadeMt)
    for (int64_t b = b_begin; b < b_end; ++b)
      with_tile_rows<kMadeMt>((int)(A.M - m < kMadeMt ? A.M - m : kMadeMt), [&]<int MT>() {
        tile_made<MT>(A, m, W, b, made + (b - b_begin) * block_bytes, bias, Y, ldy);
      });
}

}  // namespace gannet::kernels::GANNET_ISA
#else  // the avx2 object
// AVX2: a step's 16 position bytes become shuffle indices through a table (256 dwords per n: a
// byte's four positions plus their runs' offsets), two gathers of 8 rows. Each activation row
// broadcasts the 16 bytes from the step's first column to both lanes and vpshufb gathers every
// row's 4 activations; vpmaddubsw multiplies |a| (unsigned, 128 for -128) with the kept values
// carrying a's sign (vpsignb: |q| <= 127, so no overflow), pairs at most 2 * 128 * 127 in int16, and
// vpmaddwd adds a row's pairs into its int32 lane. The rows are not biased here, so the sums need
// no correction.
#include <immintrin.h>

#include "gannet/kernels/nm_sparse_matmul.h"

namespace gannet::kernels::GANNET_ISA {

namespace {
constexpr int kMaxMt = 4;  // activation rows per tile

// Position byte c of a row (four 2-bit positions) -> the four shuffle indices in the step's window:
// position i plus the offset of its run, 4 (i / N).
template <int N>
struct IndexTable {
  alignas(32) uint32_t v[256];
  constexpr IndexTable() : v() {
    for (int c = 0; c < 256; ++c) {
      uint32_t d = 0;
      for (int i = 0; i < 4; ++i) d |= (uint32_t)(((c >> (2 * i)) & 3) + 4 * (i / N)) << (8 * i);
      v[c] = d;
    }
  }
};
constexpr IndexTable<1> kIndexOf1;
constexpr IndexTable<2> kIndexOf2;

// The shuffle indices of 8 rows' entries of a step, from their 8 position bytes.
inline __m256i step_index(const uint8_t* positions, const uint32_t* table) {
  const __m256i codes = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(positions)));
  return _mm256_i32gather_epi32(reinterpret_cast<const int*>(table), codes, 4);
}

// Y[m0 + m, 16 b + r] for m < MT, r < rows.
template <int MT>
void tile(const GatherRows& A, int64_t m0, const NmSparsePacked& W, int64_t b, const uint32_t* table,
          const float* bias, float* Y, int64_t ldy) {
  const int rows = (int)(W.N - 16 * b < 16 ? W.N - 16 * b : 16);
  const int64_t G = W.K / W.group, steps = W.steps_per_group(), step_columns = 16 / W.n;
  const uint8_t* block = static_cast<const uint8_t*>(W.data) + b * W.block_bytes();
  const __m256i ones16 = _mm256_set1_epi16(1);
  __m256 f[MT][2];
  for (int m = 0; m < MT; ++m) f[m][0] = f[m][1] = _mm256_setzero_ps();
  for (int64_t g = 0; g < G; ++g) {
    const uint8_t* gp = block + g * W.group_bytes();
    const uint8_t* values = gp + 64;
    const uint8_t* positions = values + steps * 64;
    const uint8_t* x0 = A.x + m0 * A.stride + g * W.group;
    __m256i acc[MT][2];
    for (int m = 0; m < MT; ++m) acc[m][0] = acc[m][1] = _mm256_setzero_si256();
    for (int64_t s = 0; s < steps; ++s) {
      const __m256i index[2] = {step_index(positions + 16 * s, table), step_index(positions + 16 * s + 8, table)};
      const __m256i w[2] = {_mm256_load_si256(reinterpret_cast<const __m256i*>(values + 64 * s)),
                            _mm256_load_si256(reinterpret_cast<const __m256i*>(values + 64 * s + 32))};
      for (int m = 0; m < MT; ++m) {
        const __m256i window = _mm256_broadcastsi128_si256(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(x0 + m * A.stride + s * step_columns)));
        for (int h = 0; h < 2; ++h) {
          const __m256i a = _mm256_shuffle_epi8(window, index[h]);
          const __m256i pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(a), _mm256_sign_epi8(w[h], a));
          acc[m][h] = _mm256_add_epi32(acc[m][h], _mm256_madd_epi16(pairs, ones16));
        }
      }
    }
    for (int h = 0; h < 2; ++h) {
      const __m256 scale = _mm256_load_ps(reinterpret_cast<const float*>(gp) + 8 * h);
      for (int m = 0; m < MT; ++m) f[m][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[m][h]), scale, f[m][h]);
    }
  }
  for (int h = 0; h < 2; ++h) {
    const int n = rows - 8 * h < 8 ? rows - 8 * h : 8;
    if (n <= 0) break;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i store = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane);
    const __m256 b_vec = bias ? _mm256_maskload_ps(bias + 16 * b + 8 * h, store) : _mm256_setzero_ps();
    for (int m = 0; m < MT; ++m)
      _mm256_maskstore_ps(Y + (m0 + m) * ldy + 16 * b + 8 * h, store,
                          _mm256_fmadd_ps(f[m][h], _mm256_set1_ps(A.scale[m0 + m]), b_vec));
  }
}

void tile_rows(const GatherRows& A, int64_t m0, int mt, const NmSparsePacked& W, int64_t b, const uint32_t* table,
               const float* bias, float* Y, int64_t ldy) {
  switch (mt) {
    case 4: return tile<4>(A, m0, W, b, table, bias, Y, ldy);
    case 3: return tile<3>(A, m0, W, b, table, bias, Y, ldy);
    case 2: return tile<2>(A, m0, W, b, table, bias, Y, ldy);
    default: return tile<1>(A, m0, W, b, table, bias, Y, ldy);
  }
}
}  // namespace

void nm_sparse_matmul_range(const GatherRows& A, const NmSparsePacked& W, const float* bias, float* Y, int64_t ldy,
                            int64_t b_begin, int64_t b_end) {
  const uint32_t* table = W.n == 1 ? kIndexOf1.v : kIndexOf2.v;
  for (int64_t m = 0; m < A.M; m += kMaxMt)
    for (int64_t b = b_begin; b < b_end; ++b)
      tile_rows(A, m, (int)(A.M - m < kMaxMt ? A.M - m : kMaxMt), W, b, table, bias, Y, ldy);
}

}  // namespace gannet::kernels::GANNET_ISA
#endif
