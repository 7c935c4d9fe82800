// A quantized weight matrix as gannet holds and stores it: the integers, the scales and (for
// asymmetric quantization) the zero points as tensors, plus the logical input width. The layout is
// kernels::QuantizedWeights' (row-major, group-wise along the input dimension); kernels pack it
// once more for the layout they stream.
//
// In a safetensors file a quantized weight "NAME" is stored as "NAME.q" (I8 [N, Kp], or U8
// [N, Kp / 2] for 4 bits), "NAME.scale" (F32 [N, Kp / group]) and, when asymmetric, "NAME.zero"
// (I8 [N, Kp / group]); bits, group and the logical K are recorded in the file's metadata
// (io/gpt_weights.h). Any safetensors reader can open such a file.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "gannet/core/tensor.h"
#include "gannet/kernels/quantized_weights.h"

namespace gannet::io {

struct QuantizedTensor {
  int bits = 8;           // 8 or 4
  int64_t rows = 0;       // N
  int64_t in = 0;         // logical K (the model's input width)
  int64_t padded_in = 0;  // Kp: K rounded up to a whole number of groups
  int64_t group = 0;      // columns per scale (Kp for one scale per row)
  Tensor q, scale, zero;  // zero undefined when symmetric

  bool symmetric() const { return !zero.defined(); }
  kernels::QuantizedWeights view() const;
  // Bytes stored (integers, scales, zero points).
  int64_t nbytes() const;
  // The dequantized matrix, f32 [rows, in].
  Tensor dequantize() const;
  // Rows [begin, end) as a quantized matrix of their own, sharing this one's storage (the layout is
  // row-major, so a row range of the integers, scales and zero points is contiguous): expert e of
  // an MoE expert tensor stored as one [E * out, in] matrix is row_slice(e * out, (e + 1) * out).
  QuantizedTensor row_slice(int64_t begin, int64_t end) const;
  // Checks that the tensors agree with bits/rows/in/padded_in/group, that every scale is finite
  // and >= 0 and every zero point in range; throws naming `what`.
  void validate(const std::string& what) const;

  // The file entries of weight `name` (NAME.q, NAME.scale, NAME.zero).
  void append_entries(const std::string& name, std::vector<std::pair<std::string, Tensor>>& out) const;
};

}  // namespace gannet::io
