// XTC's binary / ternary weight quantization simulated in f32 for quantization-aware training:
// the forward value is exactly what the packed quantizer stores, dequantized; the backward is the
// straight-through estimator.
#pragma once
#include "gannet/autograd/variable.h"
#include "gannet/compress/low_bit_quantizer.h"

namespace gannet::compress {

// w f32 [N, K] -> quantize_low_bit(w, spec).dequantize(), bitwise, computed directly (no bit
// planes). The gradient passes straight through to w unchanged (identity STE, as XTC's
// BinaryQuantizer / TernaryQuantizer backward: no clipping of |w| > 1, no scale term). Throws
// quantize_low_bit's one-line errors (bad spec, empty matrix, over-wide row, non-finite weight).
autograd::Var fake_quantize_low_bit(const autograd::Var& w, const LowBitSpec& spec);

// The forward alone: out [N, K] = the dequantized low-bit W [N, K] (rows in parallel).
void fake_quantize_low_bit(const float* W, int64_t N, int64_t K, const LowBitSpec& spec, float* out);

}  // namespace gannet::compress
