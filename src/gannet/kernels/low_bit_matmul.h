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

namespace ref {
// The exact inner sums: S [M, N, groups], S[(m * N + n) * groups + g].
void low_bit_group_sums(const QuantizedRows& A, const LowBitWeights& W, int32_t* S);
// Y [M, ldy], columns [0, N).
void low_bit_matmul(const QuantizedRows& A, const LowBitWeights& W, float* Y, int64_t ldy);
}  // namespace ref

}  // namespace gannet::kernels
