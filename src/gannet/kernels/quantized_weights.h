// A weight matrix quantized group-wise along its input dimension: the form the quantizer
// (compress/quantizer.h) produces and a quantized safetensors file stores, row-major and plain.
// Kernels pack it once into the layout they stream (kernels/quant_matmul.h).
//
//   W[n, k] ~= scale[n, k / group] * (q[n, k] - zero[n, k / group])
//
// q holds signed integers: [-128, 127] for 8 bits, [-8, 7] for 4 bits; symmetric quantization has
// no zero points (zero == nullptr means 0) and uses [-127, 127] / [-7, 7]. Asymmetric quantization
// stores its zero points in the same signed range. K is a multiple of group (the quantizer pads
// with zeros, and records the logical K separately); per-row quantization is group == K.
#pragma once
#include <cstdint>

namespace gannet::kernels {

struct QuantizedWeights {
  int bits = 8;               // 8 or 4
  int64_t N = 0, K = 0;       // rows (outputs) and columns (inputs), K % group == 0
  int64_t group = 0;          // columns per scale
  const int8_t* q = nullptr;  // bits 8: [N, K] int8; bits 4: [N, K / 2] bytes, two's-complement
                              // nibbles, column 2j in the low nibble and 2j + 1 in the high one
  const float* scale = nullptr;  // [N, K / group]
  const int8_t* zero = nullptr;  // [N, K / group], or nullptr (symmetric)

  int64_t groups_per_row() const { return group > 0 ? K / group : 0; }
  int64_t q_bytes() const { return bits == 8 ? N * K : N * K / 2; }
  // The integer value at (n, k) (4-bit nibbles sign-extended).
  int value(int64_t n, int64_t k) const {
    if (bits == 8) return q[n * K + k];
    const uint8_t byte = static_cast<uint8_t>(q[(n * K + k) / 2]);
    const int nib = (k % 2 == 0) ? (byte & 0x0F) : (byte >> 4);
    return nib >= 8 ? nib - 16 : nib;
  }
  float dequantized(int64_t n, int64_t k) const {
    const int64_t g = n * groups_per_row() + k / group;
    return scale[g] * (float)(value(n, k) - (zero ? zero[g] : 0));
  }
};

}  // namespace gannet::kernels
