// ZeroQuant's fusion as the engines use it: the op that produces a quantized product's input
// quantizes it (the LayerNorm in front of c_attn and c_fc, c_fc's GELU in front of mlp.c_proj), so
// the product's f32 input never goes to memory. Int8 rows or int4 codes, as the product's recorded
// inputs say; bitwise the unfused op followed by the product's own quantization.
#pragma once
#include <cstdint>
#include <vector>

#include "gannet/infer/linear_weight.h"
#include "gannet/kernels/quant_matmul.h"

namespace gannet::infer {

// Whether w takes its inputs quantized by their producer: a dense quantized product whose inputs
// are quantized (int8 or int4).
bool takes_fused_inputs(const LinearWeight& w);

// One pass's quantized rows: bytes (int8 rows or int4 codes), row scales and zero points.
struct QuantizedInputs {
  std::vector<int8_t> q;
  std::vector<float> scale;
  std::vector<uint8_t> zero;
  // Room for `rows` rows of `width` columns (int8: width bytes a row).
  void reserve(int64_t rows, int64_t width);
};

// Rows [0, n) of x [n, C] through LayerNorm (gamma, beta, eps), quantized for w's inputs
// (w.packed_in() columns, padding value 0) into `in`; returns them for w.apply_quantized.
kernels::QuantizedRows layernorm_quantized(const LinearWeight& w, const float* x, int64_t n, int64_t C,
                                           const float* gamma, const float* beta, float eps, QuantizedInputs& in);

}  // namespace gannet::infer
