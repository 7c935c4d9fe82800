// An N:M sparse, quantized weight matrix as gannet holds it: the kept values, their positions and
// the scales as tensors, in kernels::NmSparseWeights' layout (kernels/nm_sparse_weights.h).
#pragma once
#include <cstdint>
#include <string>

#include "gannet/core/tensor.h"
#include "gannet/kernels/nm_sparse_weights.h"

namespace gannet::io {

struct NmSparseTensor {
  int n = 2, m = 4;      // the pattern
  int bits = 8;          // 8 or 4
  int64_t rows = 0;      // N
  int64_t in = 0;        // K (a multiple of the group)
  int64_t group = 0;     // input columns per scale
  Tensor values;         // I8 [rows, kept] (bits 8) or U8 [rows, kept / 2] (bits 4)
  Tensor index;          // U8 [rows, index row bytes]
  Tensor scale;          // F32 [rows, in / group]

  kernels::NmSparseWeights view() const;
  // Bytes stored: values, positions and scales.
  int64_t nbytes() const;
  // The dense matrix, f32 [rows, in], zeros where nothing is kept.
  Tensor dequantize() const;
  // Checks the pattern, bits and shapes against the tensors, every value in the symmetric range,
  // positions below m and strictly increasing within each run, padding bits 0, and every scale
  // finite and >= 0; throws one line naming `what`.
  void validate(const std::string& what) const;
};

}  // namespace gannet::io
