// An N:M sparse, quantized weight matrix as gannet holds it: the kept values, their positions and
// the scales as tensors, in kernels::NmSparseWeights' layout (kernels/nm_sparse_weights.h).
//
// In a safetensors file a weight "NAME" is stored as "NAME.values" (I8 [rows, kept], or U8
// [rows, kept / 2] for 4 bits), "NAME.index" (U8 [rows, index row bytes]) and "NAME.scale" (F32
// [rows, in / group]); the pattern ("2:4"), bits, group, rows, the input width and the packing are
// recorded in the file's metadata entry for the weight. Any safetensors reader can open such a file.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "gannet/core/tensor.h"
#include "gannet/kernels/nm_sparse_weights.h"

namespace gannet::io {

class SafeTensors;
class JsonReader;

// The packing name recorded in the metadata.
inline constexpr const char* kNmSparsePacking = "kept-values-positions-lsb";

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

  // The file entries of weight `name` (NAME.values, NAME.index, NAME.scale) and its metadata entry
  // ({"pattern", "bits", "rows", "in", "group", "packing"}).
  void append_entries(const std::string& name, std::vector<std::pair<std::string, Tensor>>& out) const;
  nlohmann::json metadata() const;
  // Weight `name` of `file` as its metadata entry (read through `entry`, so that its finish() checks
  // for unknown keys) describes it, validated against the file; errors name the file and the weight.
  static NmSparseTensor read(const SafeTensors& file, const std::string& name, const JsonReader& entry);
};

}  // namespace gannet::io
