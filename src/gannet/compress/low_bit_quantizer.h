// XTC's extreme low-bit weight quantizers (Wu et al. 2022, "Extreme Compression for Pre-trained
// Transformers Made Simple and Efficient"), producing packed bit planes (io::LowBitTensor):
//
//   binary (BinaryBERT / XNOR-Net): w_b = sign(w) (+1 for w >= 0), alpha = mean |w| over the
//     row's (or group's) real columns;
//   ternary (TWN / TernaryBERT): delta = 0.7 * mean |w|, w_t = sign(w) where |w| > delta (strictly:
//     a value at exactly delta is 0), else 0; alpha = mean |w| over the kept entries (0 if none).
//
// Scales are per output row (group 0) or per group of input columns (a multiple of 32, the packing
// word). Means are summed in double over the real (unpadded) columns and rounded to float once;
// delta = kTernaryThreshold * float(mean) in float, and the test is |w| > delta in float.
#pragma once
#include <cstdint>
#include <string>

#include "gannet/core/tensor.h"
#include "gannet/io/low_bit_tensor.h"

namespace gannet::compress {

inline constexpr float kTernaryThreshold = 0.7f;

struct LowBitSpec {
  int bits = 1;        // 1: binary, 2: ternary
  int64_t group = 0;   // input columns per scale (a multiple of 32); 0 = one scale per row

  // As WeightQuantSpec's: K padded to a multiple of the group (per row: of 32); a group at least as
  // wide as K padded to 32 is one group per row.
  int64_t padded_width(int64_t K) const;
  int64_t group_for(int64_t K) const;
  void validate() const;  // throws one line on bits other than 1/2 or a group that is not 0 or a
                          // positive multiple of 32 up to kMaxQuantGroup (core/limits.h)
  std::string describe() const;  // e.g. "binary g64", "ternary per-row"
};

// Quantizes W (f32 [N, K], row-major); throws one line on an empty shape, a row wider than
// kernels::kMaxLowBitGroup with per-row scales, or a weight that is not finite. Padding columns get 0 bits.
io::LowBitTensor quantize_low_bit(const float* W, int64_t N, int64_t K, const LowBitSpec& spec);
io::LowBitTensor quantize_low_bit(const Tensor& W, const LowBitSpec& spec);  // W f32 [N, K]

}  // namespace gannet::compress
