// What the inputs of a GPT's block products look like on calibration text (the INT4 paper's
// decoder analysis): per product, how far its largest channel stands above the typical one
// (outlier channels), how one-sided its tokens are, and the relative error that token-wise int8,
// symmetric int4 and asymmetric int4 quantization leave in it (the quantizers the engine runs).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gannet/core/tensor.h"
#include "gannet/io/gpt_weights.h"

namespace gannet::compress {

struct InputStatistics {
  std::string product;  // "h.3.mlp.c_proj.weight"
  int64_t tokens = 0, channels = 0;
  float max_abs = 0.f;             // over every token and channel
  float median_channel_max = 0.f;  // the median over channels of each channel's largest |x|
  std::vector<int64_t> top_channels;  // the (up to) 3 channels with the largest |x|, largest first
  // Mean over tokens of min(-lo, hi) / max(-lo, hi) with lo, hi the token's extremes: 1 when its
  // values spread evenly around 0, 0 when they are all on one side.
  double balance = 0;
  // sum ||x - q(x)||^2 / sum ||x||^2 over the tokens, q token-wise: int8, int4 symmetric, int4
  // asymmetric.
  double error_int8 = 0, error_int4 = 0, error_int4_asym = 0;

  double outlier_ratio() const { return median_channel_max > 0.f ? max_abs / median_channel_max : 0.0; }
};

// Every block product's statistics on the float model (quantized weights dequantized) over the
// batches (i32 [B, T] windows), in model order. Dense models only.
std::vector<InputStatistics> input_statistics(const io::GptWeights& model, const std::vector<Tensor>& batches);

}  // namespace gannet::compress
