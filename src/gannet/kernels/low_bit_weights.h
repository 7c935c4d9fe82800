// XTC's extreme low-bit weight matrices (binary and ternary), as bit planes the kernels read
// directly: the form compress/low_bit_quantizer.h produces and io/low_bit_tensor.h stores.
//
//   binary:  W[n, k] = scale[n, k / group] * (sign bit ? +1 : -1)
//   ternary: W[n, k] = scale[n, k / group] * (nonzero bit ? (sign bit ? +1 : -1) : 0)
//
// Packing (the same for every plane): one bit per weight, LSB-first along the input dimension,
// each row padded to padded_K columns (a whole number of groups, a multiple of 32): column k of row
// n is bit (k % 8) of byte n * row_bytes() + k / 8, which on a little-endian machine is bit k % 32
// of the uint32 word k / 32 of the row (and bit k % 64 of the uint64 word k / 64 when padded_K is a
// multiple of 64). Padding columns [K, padded_K) have every bit 0. Ternary stores two planes,
// "nonzero" and "sign", 2 bits per weight in all; its sign bit is 0 wherever the nonzero bit is
// (so each value has one encoding): +1 = (1, 1), -1 = (1, 0), 0 = (0, 0).
#pragma once
#include <cstdint>
#include <cstring>

namespace gannet::kernels {

// Columns per packing word, the granularity of the padding and of the groups.
constexpr int64_t kLowBitWordBits = 32;
// The widest group (per-row scales included): the products' int32 sums reach 2 * 127 * group
// (binary: 2 * sum_{bit set} a), which must stay below 2^31.
constexpr int64_t kMaxLowBitGroup = int64_t(1) << 22;

struct LowBitWeights {
  int bits = 1;                      // 1: binary, 2: ternary
  int64_t N = 0;                     // rows (outputs)
  int64_t K = 0;                     // logical columns (inputs)
  int64_t padded_K = 0;              // K rounded up to whole groups; a multiple of 32
  int64_t group = 0;                 // columns per scale: a multiple of 32 dividing padded_K
  const uint8_t* sign = nullptr;     // [N, row_bytes()]
  const uint8_t* nonzero = nullptr;  // [N, row_bytes()], ternary only (nullptr for binary)
  const float* scale = nullptr;      // [N, groups_per_row()]

  int64_t row_bytes() const { return padded_K / 8; }
  int64_t words_per_row() const { return padded_K / kLowBitWordBits; }
  int64_t groups_per_row() const { return group > 0 ? padded_K / group : 0; }

  // Word j (32 columns from 32 j) of row n of a plane.
  uint32_t word(const uint8_t* plane, int64_t n, int64_t j) const {
    uint32_t w;
    std::memcpy(&w, plane + n * row_bytes() + j * 4, 4);
    return w;  // little-endian: column 32 j + b is bit b
  }
  static bool bit(const uint8_t* plane, int64_t row_bytes, int64_t n, int64_t k) {
    return (plane[n * row_bytes + k / 8] >> (k % 8)) & 1;
  }
  // The weight's value in {-1, 0, +1} before scaling (k < K).
  int value(int64_t n, int64_t k) const {
    const bool s = bit(sign, row_bytes(), n, k);
    if (bits == 2 && !bit(nonzero, row_bytes(), n, k)) return 0;
    return s ? 1 : -1;
  }
  float dequantized(int64_t n, int64_t k) const {
    return scale[n * groups_per_row() + k / group] * (float)value(n, k);
  }
};

}  // namespace gannet::kernels
