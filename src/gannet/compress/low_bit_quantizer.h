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
#include <cmath>
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

// The checks quantize_low_bit makes of its input, throwing its one-line errors.
void check_low_bit_input(const float* W, int64_t N, int64_t K, const LowBitSpec& spec);

// Mean |w| over w[0, n), summed in double and rounded to float once.
inline float low_bit_mean_abs(const float* w, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::fabs((double)w[i]);
  return (float)(s / (double)n);
}

// The one definition of the rule above for one group of real columns w[0, n): calls
// emit(i, v_i) with v_i in {-1, 0, +1} (binary: never 0) for every column in order, and returns
// the group's scale alpha; the dequantized weight is alpha * (float)v_i. Both the packed quantizer
// and the fake quantizer (compress/low_bit_fake_quant.h) use it, so they agree bitwise.
template <class Emit>
float quantize_low_bit_group(const float* w, int64_t n, int bits, Emit&& emit) {
  if (bits == 1) {
    for (int64_t i = 0; i < n; ++i) emit(i, w[i] < 0.f ? -1 : 1);
    return low_bit_mean_abs(w, n);
  }
  const float delta = kTernaryThreshold * low_bit_mean_abs(w, n);
  double kept_sum = 0;
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float a = std::fabs(w[i]);
    if (!(a > delta)) {
      emit(i, 0);
      continue;
    }
    emit(i, w[i] > 0.f ? 1 : -1);
    kept_sum += a;
    ++kept;
  }
  return kept > 0 ? (float)(kept_sum / (double)kept) : 0.f;
}

}  // namespace gannet::compress
