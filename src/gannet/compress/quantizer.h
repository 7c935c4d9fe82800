// ZeroQuant's quantizers. Weights: symmetric or asymmetric, 8 or 4 bits, one scale per group of
// input columns (32, 64, 128, ...) or per row, rounded to nearest (or stochastically, for
// training). Activations: token-wise (one scale per row, computed on the fly) or one static scale
// calibrated on data. The results are real integers (io::QuantizedTensor), not simulated ones;
// fake_quantize_* give the same numbers back in f32 for quantization-aware training (LKD).
#pragma once
#include <cstdint>
#include <string>

#include "gannet/core/tensor.h"
#include "gannet/io/quantized_tensor.h"

namespace gannet::compress {

struct WeightQuantSpec {
  int bits = 8;            // 8 or 4
  int64_t group = 64;      // input columns per scale; 0 = one scale per row
  bool symmetric = true;   // false: a zero point per group as well
  bool stochastic = false; // round up with probability equal to the fraction (needs a seed)
  uint64_t seed = 0;

  // The padded input width and the group actually used for input width K: K is padded to a
  // multiple of the group (per row: of 32, the kernels' granularity). A group at least as wide as
  // the row padded to 32 is one group per row: rows are never padded up to a wider group (a
  // --group of 65536 on 384 columns would store 170 times the weights).
  int64_t padded_width(int64_t K) const;
  int64_t group_for(int64_t K) const;
  void validate() const;  // throws on bits other than 8/4, groups not a positive multiple of 32 up to
                          // kMaxQuantGroup (core/limits.h)
  std::string describe() const;  // e.g. "int4 g64 sym"
};

// Quantizes W (f32 [N, K], row-major) group-wise along K. Padding columns quantize to zero.
io::QuantizedTensor quantize_weights(const float* W, int64_t N, int64_t K, const WeightQuantSpec& spec);
io::QuantizedTensor quantize_weights(const Tensor& W, const WeightQuantSpec& spec);

// out = dequantize(quantize(W)) (f32 [N, K]); equal to quantize_weights(...).dequantize().
void fake_quantize_weights(const float* W, int64_t N, int64_t K, const WeightQuantSpec& spec, float* out);

// Activation quantization to signed 8 bits, [-127, 127]:
//   token-wise (static_scale == 0): row m uses scale max_k |X[m, k]| / 127;
//   static (static_scale > 0): every row uses static_scale, values beyond the range clip.
// Writes the integers to q [M, K] (may be nullptr) and the row scales to scales [M] (may be nullptr).
void quantize_activations(const float* X, int64_t M, int64_t K, float static_scale, int8_t* q, float* scales);
// out = the activations after quantization and back (f32 [M, K]); out may alias X.
void fake_quantize_activations(const float* X, int64_t M, int64_t K, float static_scale, float* out);
// The same for any input quantization the engine's products run (a.quantized; int8 as above, int4
// by kernels::quantize_rows_int4: scale * (code - zero)), so that a student trains on exactly the
// values the packed model computes with.
void fake_quantize_activations(const float* X, int64_t M, int64_t K, const io::ActivationQuant& a, float* out);

// A static activation scale from calibration statistics: the largest |x| seen, over 127.
float static_scale_from_max_abs(float max_abs);

}  // namespace gannet::compress
