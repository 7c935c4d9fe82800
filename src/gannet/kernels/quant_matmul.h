// Integer matmul kernels of ZeroQuant: a group-wise int8/int4 weight matrix (QuantizedWeights,
// packed once at load) times int8 activations (W8A8, W4A8: VNNI dot products) or f32 activations
// (W8A16, W4A16: weights widened in registers), with dequantization, bias and the epilogue fused.
//
//   Y[m, n] = epilogue(sum_k x[m, k] * W[n, k] + bias[n]),  W[n, k] = s[n, g] * (q[n, k] - z[n, g])
//
// One packed layout serves decode (few rows: one sequential stream per thread, at memory
// bandwidth) and prefill (many rows: each 16-row block of W stays in cache while all activation
// rows pass over it).
//
// Packed layout. Rows in blocks of 16 (N padded with zero weights and zero scales); a block holds
// its K / group groups one after another; a group is
//   64 bytes   f32 scales of the 16 rows,
//   64 bytes   (asymmetric only) int32 offsets of the 16 rows: o = bias + z,
//   16*group   (int8) chunks of 64 bytes for 4 k's: byte 4r + j = q[r][k0 + j] + 128 (as u8);
//    8*group   (int4) chunks of 64 bytes for 8 k's: byte 4r + j = (q[r][k0 + j] + 8)
//              | (q[r][k0 + 4 + j] + 8) << 4.
// Weights are stored biased to unsigned (bias 128 or 8) because vpdpbusd multiplies u8 by s8: the
// activations stay signed and one broadcast of 4 activation bytes feeds 64 multiply-adds. The
// offset returns as a per-(row, group) correction o * sum_group(a) (symmetric: o = bias).
//
// Arithmetic, the same in every path (the scalar reference, AVX-512 VNNI, AVX2), so that all of
// them agree bitwise except for the GELU of the epilogue:
//   int8 activations: I_g = sum_{k in g} a[m,k] * (q[n,k] - z[n,g]) in int32 (exact);
//                     acc = fma(float(I_g), s[n,g], acc) for g ascending; y = fma(acc, sa[m], bias[n]).
//   f32 activations:  four f32 chains c_j = fma(x[m,k], float(u[n,k]), c_j) over the group's k's
//                     with k % 4 == j, ascending (u: the stored unsigned value);
//                     t = (c0 + c1) + (c2 + c3); t = fma(-o[n,g], xsum[m,g], t);
//                     acc = fma(t, s[n,g], acc) for g ascending; y = acc + bias[n].
// So each output row depends only on its own activation row: bitwise independent of M, of the
// other rows, of tiling and of the thread count (the engine's batch-invariance contract).
//
// Shapes: K % group == 0 and group % 32 == 0 (32, 64, 128, or per-row group == K); anything else
// throws gannet::Error (the quantizer pads K).
#pragma once
#include <cstdint>

#include "gannet/kernels/quantized_weights.h"
#include "gannet/kernels/skinny_matmul.h"  // Epilogue

namespace gannet::kernels {

constexpr int64_t kQBlockRows = 16;

// A packed quantized matrix (not owning its data).
struct QPackedMatrix {
  int bits = 8;
  int64_t N = 0, K = 0, group = 0;
  bool asymmetric = false;
  const void* data = nullptr;  // 64-byte aligned for full speed
};

// Bytes of the packed form of w (or of a matrix of that shape).
int64_t qpacked_bytes(int bits, int64_t N, int64_t K, int64_t group, bool asymmetric);
int64_t qpacked_bytes(const QuantizedWeights& w);
// Packs w into out (qpacked_bytes(w) bytes, 64-byte aligned). Throws on a shape the kernels do not
// take or on values outside the bit width.
void pack_quantized(const QuantizedWeights& w, void* out);
// The packed matrix of w's shape whose bytes are at data (written by pack_quantized).
QPackedMatrix qpacked_view(const QuantizedWeights& w, const void* data);
// Dequantized rows [r0, r0 + rows) as row-major f32 out [rows, K]: s * (q - z), as
// QuantizedWeights::dequantized computes it.
void unpack_quantized_rows(const QPackedMatrix& W, int64_t r0, int64_t rows, float* out);

// Activations quantized token-wise: row m is sa[m] * q[m, :].
//  - bits 8 (kernels/quantize_rows.h writes them): one int8 per column, q in [-127, 127];
//  - bits 4 (W4A4; kernels/quantize_rows_int4.h writes them): two codes c in [0, 15] per byte
//    (column 2j in the low nibble of byte j), standing for c - zero[m] (zero nullptr: 8 for every
//    row, symmetric). The products widen them to int8 as they gather a tile of rows (the VNNI
//    instructions multiply bytes), so every path's arithmetic below is that of the int8 values
//    c - z; the rows occupy half the bytes.
struct QuantizedRows {
  const int8_t* q = nullptr;
  int64_t ld = 0;                // row stride of q in bytes
  const float* scale = nullptr;  // [M]
  int64_t M = 0, K = 0;
  int bits = 8;
  const uint8_t* zero = nullptr;  // bits 4: [M] zero points, or nullptr (8)
};

// W8A8 / W4A8. bias may be nullptr. Runs on the OpenMP threads (N split into contiguous block
// ranges); called inside a parallel region it runs on the calling thread. Y must not overlap A.
void quant_matmul(const QuantizedRows& A, const QPackedMatrix& W, const float* bias, float* Y, int64_t ldy, Epilogue e);
// ZeroQuant's fusion for an MLP on int8 inputs: W8A8 / W4A8 with the GELU epilogue, whose output is
// also quantized token-wise for the next int8-input product: H = gelu(A W^T + b) ([M, ldh], f32), and
// q, scales = quantize_rows(H, static_scale) (q: [M, ldq], columns [0, N); padding columns beyond N
// are the caller's). Each thread quantizes the columns it computed while they are in its cache; a
// row's maximum is the maximum of the threads' parts (one barrier). Bitwise the result of
// quant_matmul(..., Epilogue::gelu) followed by quantize_rows.
void quant_matmul_gelu_int8(const QuantizedRows& A, const QPackedMatrix& W, const float* bias, float* H, int64_t ldh,
                            float static_scale, int8_t* q, int64_t ldq, float* scales);
// The same fusion for an int4-input product (W4A4's MLP): H as above, and its rows quantized as
// quantize_rows_int4(H, ldh, M, N, Kp, asymmetric, static_scale, q, ldq, scales, zeros) would
// (kernels/quantize_rows_int4.h: codes of columns [0, Kp), padding code z, two per byte). Each
// thread finds the extremes of the columns it computed, then writes their codes. Bitwise that
// sequence.
void quant_matmul_gelu_int4(const QuantizedRows& A, const QPackedMatrix& W, const float* bias, float* H, int64_t ldh,
                            int64_t Kp, bool asymmetric, float static_scale, uint8_t* q, int64_t ldq, float* scales,
                            uint8_t* zeros);
// W8A16 / W4A16 (weight-only): f32 activations X [M, K] (row stride ldx); same threading.
void quant_matmul_f32(const float* X, int64_t ldx, int64_t M, const QPackedMatrix& W, const float* bias, float* Y,
                      int64_t ldy, Epilogue e);

// Throws gannet::Error naming `what` unless the kernels take this shape.
void check_quant_shape(int bits, int64_t K, int64_t group, const char* what);

// Per-(row, group) sums of the activations, which the kernels' offset correction needs:
// asum[m * (K / group) + g] = sum_{k in g} q[m, k];  xsum likewise for f32 rows, summed as eight
// partial sums (k % 8) combined pairwise, so that every path sees the same value.
void activation_group_sums(const QuantizedRows& A, int64_t group, int32_t* asum);
void activation_group_sums_f32(const float* X, int64_t ldx, int64_t M, int64_t K, int64_t group, float* xsum);

// The per-ISA bodies: output columns [n_begin, n_end) on the calling thread (n_begin a multiple of
// kQBlockRows), with the group sums above.
#define GANNET_QUANT_MATMUL_DECLS                                                                                 \
  void quant_matmul_range(const QuantizedRows& A, const int32_t* asum, const QPackedMatrix& W, const float* bias, \
                          float* Y, int64_t ldy, Epilogue e, int64_t n_begin, int64_t n_end);                     \
  void quant_matmul_f32_range(const float* X, int64_t ldx, int64_t M, const float* xsum, const QPackedMatrix& W,  \
                              const float* bias, float* Y, int64_t ldy, Epilogue e, int64_t n_begin, int64_t n_end);
namespace ref {
GANNET_QUANT_MATMUL_DECLS  // scalar, following the arithmetic above literally
}
namespace avx2 {
GANNET_QUANT_MATMUL_DECLS  // vpmaddwd on int16 (no VNNI)
}
namespace avx512 {
GANNET_QUANT_MATMUL_DECLS  // AVX512-VNNI vpdpbusd; needs cpu_has_avx512_vnni()
// quant_matmul_range in two steps, so that the threads of one product can share the first: the
// int8 rows are packed in tiles of a8_tile_rows(bits) rows (aq: M * K / 4 words, as: M * K / group),
// rows [m_begin, m_end) at a time (m_begin a multiple of the tile rows), then any output range
// reads all the tiles. 4-bit rows are packed from their codes (asum unused: the sums come from
// the codes); the packed range then reads them as int8 rows.
int64_t a8_tile_rows(int bits);
void a8_pack_rows(const QuantizedRows& A, const int32_t* asum, const QPackedMatrix& W, int64_t m_begin, int64_t m_end,
                  int32_t* aq, int32_t* as);
void quant_matmul_packed_range(const QuantizedRows& A, const int32_t* aq, const int32_t* as, const QPackedMatrix& W,
                               const float* bias, float* Y, int64_t ldy, Epilogue e, int64_t n_begin, int64_t n_end);
}
#undef GANNET_QUANT_MATMUL_DECLS

}  // namespace gannet::kernels
