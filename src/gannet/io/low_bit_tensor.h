// An XTC low-bit weight matrix as gannet holds and stores it: binary (1 bit per weight) or ternary
// (2 bits per weight) bit planes and f32 scales, per output row or per group of input columns. The
// layout is kernels::LowBitWeights' (kernels/low_bit_weights.h: LSB-first bits along the input,
// rows padded to whole groups of a multiple of 32 columns); the kernels read it as it is.
//
// In a safetensors file a low-bit weight "NAME" is stored as "NAME.sign" (U8 [rows, padded_in / 8]),
// for ternary also "NAME.nonzero" (U8, the same shape), and "NAME.scale" (F32 [rows, padded_in /
// group]); bits, group, the logical input width and the packing are recorded in the file's metadata
// (io/low_bit_file.h). Any safetensors reader can open such a file.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "gannet/core/tensor.h"
#include "gannet/kernels/low_bit_weights.h"

namespace gannet::io {

class SafeTensors;
class JsonReader;

// The packing names recorded in the metadata.
inline constexpr const char* kBinaryPacking = "sign-bits-lsb";             // 1 plane
inline constexpr const char* kTernaryPacking = "nonzero-sign-planes-lsb";  // 2 planes

struct LowBitTensor {
  int bits = 1;           // 1: binary, 2: ternary
  int64_t rows = 0;       // N
  int64_t in = 0;         // logical K
  int64_t padded_in = 0;  // K rounded up to whole groups (a multiple of 32)
  int64_t group = 0;      // columns per scale (padded_in for one scale per row)
  Tensor sign;            // U8 [rows, padded_in / 8]
  Tensor nonzero;         // U8 [rows, padded_in / 8]; ternary only (undefined for binary)
  Tensor scale;           // F32 [rows, padded_in / group]

  bool ternary() const { return bits == 2; }
  kernels::LowBitWeights view() const;
  // Bytes stored: the bit planes and the scales.
  int64_t nbytes() const;
  // The dequantized matrix, f32 [rows, in].
  Tensor dequantize() const;
  // Checks that the tensors agree with bits/rows/in/padded_in/group, that every padding bit is 0,
  // that no ternary zero has its sign bit set, and that every scale is finite and >= 0; throws
  // one line naming `what`.
  void validate(const std::string& what) const;

  // The file entries of weight `name` (NAME.sign, NAME.nonzero, NAME.scale) and its metadata entry
  // ({"bits", "group", "in", "padded_in", "rows", "packing"}).
  void append_entries(const std::string& name, std::vector<std::pair<std::string, Tensor>>& out) const;
  nlohmann::json metadata() const;
  // Weight `name` of `file` as its metadata entry (read through `entry`, so that its finish()
  // checks for unknown keys) describes it, validated against the file (every
  // size, dtype, padding bit and scale); errors name the file and the weight.
  static LowBitTensor read(const SafeTensors& file, const std::string& name, const JsonReader& entry);
};

}  // namespace gannet::io
