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

// How a Linear's input is quantized at run time: kept in f32 (weight-only schemes, "A16"), or
// quantized to int8 (or int4) token-wise (static_scale == 0) or with one calibrated static scale.
struct ActivationQuant {
  bool quantized = false;    // inputs quantized to `bits` bits; false: they stay f32
  float static_scale = 0.f;  // 0: token-wise (dynamic); else one calibrated scale (symmetric only)
  int bits = 8;              // 8, or 4 (W4A4: two codes per byte, kernels/quantize_rows_int4.h)
  bool asymmetric = false;   // bits 4: a zero point per row (token-wise only)
  bool int8() const { return quantized && bits == 8; }
  bool operator==(const ActivationQuant&) const = default;
};

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
  // A copy of the rows [begin, end) of each range, in order, then zero rows (scale 0) up to `rows`
  // rows in all: a tensor-parallel rank's rows of c_attn's Q, K and V blocks, or of a vocabulary.
  QuantizedTensor gather_rows(const std::vector<std::pair<int64_t, int64_t>>& ranges, int64_t rows) const;
  // A copy of the columns [begin, end) of the padded width: whole groups (begin and end multiples
  // of the group, or end the padded width), so each row keeps its scales; a row-parallel rank's
  // share of c_proj. Its logical width stops at this matrix's.
  QuantizedTensor column_slice(int64_t begin, int64_t end) const;
  // Checks that the tensors agree with bits/rows/in/padded_in/group, that every scale is finite
  // and >= 0 and every zero point in range; throws naming `what`.
  void validate(const std::string& what) const;

  // The file entries of weight `name` (NAME.q, NAME.scale, NAME.zero).
  void append_entries(const std::string& name, std::vector<std::pair<std::string, Tensor>>& out) const;
};

}  // namespace gannet::io
