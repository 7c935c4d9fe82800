// XTC's products: int8 activations (token-wise, kernels/quantize_rows.h) times a binary or ternary
// weight matrix, computed on the bit planes as stored (kernels/low_bit_weights.h), with no
// unpacking of the weights to f32 or int8.
//
//   Y[m, n] = sa[m] * sum_g alpha[n, g] * S[m, n, g],   S[m, n, g] = sum_{k in g, k < K} a[m, k] * w[n, k]
//
// with w in {-1, +1} (binary) or {-1, 0, +1} (ternary). The inner sums are exact in int32 (|S| <=
// 127 * group <= 127 * 2^16), from the planes:
//   binary:  S = 2 * sum_{sign bit set} a - sum a
//   ternary: S = sum_{nonzero and sign} a - sum_{nonzero and not sign} a
// Arithmetic, which the vector paths are to follow so that they agree bitwise with this reference:
//   acc = fma(float(S_g), alpha[n, g], acc) for g ascending from acc = 0;  y = acc * sa[m].
// Activation columns [K, padded_K) are never read.
#pragma once
#include <cstdint>

#include "gannet/kernels/low_bit_weights.h"
#include "gannet/kernels/quant_matmul.h"  // QuantizedRows

namespace gannet::kernels {

// Throws one line naming `what` unless A and W have a shape the product takes (A.K == W.K, bits 1
// or 2, padded_K and group multiples of 32 with padded_K - K < group, planes and scales present).
void check_low_bit_product(const QuantizedRows& A, const LowBitWeights& W, const char* what);

// The product on the planes with the best vector path (AVX-512 with VNNI, VBMI and GFNI, else AVX2, as core/cpu.h
// reports, else ref::), bitwise ref::low_bit_matmul's result. One to six rows (decode) stream each weight row
// once; more rows are tiled so that each weight word is expanded once per six activation rows. Runs
// on the OpenMP threads (each its own range of output columns; called inside a parallel region, on
// the calling thread); results depend neither on the thread count nor on M (any int8 activations,
// -128 included). Y must not overlap A.
void low_bit_matmul(const QuantizedRows& A, const LowBitWeights& W, float* Y, int64_t ldy);

// The per-ISA bodies: output columns [n_begin, n_end) of all rows on the calling thread, for a
// product check_low_bit_product accepts, with at most INT32_MAX scales.
#define GANNET_LOW_BIT_MATMUL_DECLS                                                                      \
  void low_bit_matmul_range(const QuantizedRows& A, const LowBitWeights& W, float* Y, int64_t ldy, \
                            int64_t n_begin, int64_t n_end);
namespace avx2 {
GANNET_LOW_BIT_MATMUL_DECLS
}
namespace avx512 {
GANNET_LOW_BIT_MATMUL_DECLS  // needs cpu_has_avx512_vnni() and cpu_has_avx512_vbmi_gfni()
}
#undef GANNET_LOW_BIT_MATMUL_DECLS

namespace ref {
// The exact inner sums: S [M, N, groups], S[(m * N + n) * groups + g].
void low_bit_group_sums(const QuantizedRows& A, const LowBitWeights& W, int32_t* S);
// Y [M, ldy], columns [0, N).
void low_bit_matmul(const QuantizedRows& A, const LowBitWeights& W, float* Y, int64_t ldy);
}  // namespace ref

}  // namespace gannet::kernels
