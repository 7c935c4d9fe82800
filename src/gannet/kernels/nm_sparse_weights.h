// A weight matrix with N:M sparsity along its input dimension and quantized kept values
// (NxMiFormer): only the kept entries are stored, each with its position in its run of m columns.
// The form compress/nm_sparse_quantizer.h produces and io/nm_sparse_tensor.h stores, row-major and
// plain; kernels pack it once more for the layout they stream.
//
//   W[r, k] = scale[r, k / group] * q   if k is kept in row r (q its stored value), else 0.
//
// Every run of m columns (starting at a multiple of m) stores exactly n entries, in column order
// (a run with fewer nonzeros stores kept zeros), so row r's kept entry j belongs to run j / n:
//   column(r, j) = (j / n) * m + position(r, j),  position strictly increasing within a run.
// values: bits 8, int8 [N, kept_per_row()] in [-127, 127]; bits 4, [N, kept_per_row() / 2] bytes of
// two's-complement nibbles in [-7, 7], kept entry 2i in the low nibble and 2i + 1 in the high one.
// index: position(r, j) in index_bits() = ceil(log2 m) bits, LSB-first along the row (entry j at
// bit j * index_bits() of the row), rows padded to whole bytes with 0 bits: 2 bits per kept entry at
// 2:4. Scales are symmetric, one per row and group of input columns (a multiple of m and of 32).
#pragma once
#include <cstdint>

#include "gannet/core/nm_pattern.h"

namespace gannet::kernels {

struct NmSparseWeights {
  int n = 2, m = 4;                  // the pattern: n kept of every m
  int bits = 8;                      // 8 or 4 (the kept values)
  int64_t N = 0, K = 0;              // the dense shape; K a multiple of group
  int64_t group = 0;                 // input columns per scale
  const int8_t* values = nullptr;    // see above
  const uint8_t* index = nullptr;    // [N, index_row_bytes()]
  const float* scale = nullptr;      // [N, K / group]

  int index_bits() const { return NmPattern{n, m}.index_bits(); }
  int64_t kept_per_row() const { return K / m * n; }
  int64_t value_row_bytes() const { return bits == 8 ? kept_per_row() : kept_per_row() / 2; }
  int64_t index_row_bytes() const { return (kept_per_row() * index_bits() + 7) / 8; }
  int64_t groups_per_row() const { return group > 0 ? K / group : 0; }

  int position(int64_t r, int64_t j) const {
    const int64_t bit = j * index_bits();
    const uint8_t* row = index + r * index_row_bytes();
    const unsigned two = row[bit / 8] | (bit / 8 + 1 < index_row_bytes() ? row[bit / 8 + 1] << 8 : 0);
    return (int)((two >> (bit % 8)) & ((1u << index_bits()) - 1));
  }
  int64_t column(int64_t r, int64_t j) const { return (j / n) * m + position(r, j); }
  int value(int64_t r, int64_t j) const {
    if (bits == 8) return values[r * kept_per_row() + j];
    const uint8_t byte = static_cast<uint8_t>(values[r * value_row_bytes() + j / 2]);
    const int nib = (j % 2 == 0) ? (byte & 0x0F) : (byte >> 4);
    return nib >= 8 ? nib - 16 : nib;
  }
  float dequantized(int64_t r, int64_t j) const {
    return scale[r * groups_per_row() + column(r, j) / group] * (float)value(r, j);
  }
};

}  // namespace gannet::kernels
