// Quantization simulated in f32 with straight-through gradients: what layer-by-layer distillation
// (compress/lkd.h) trains through, and the independent reference the integer kernels of the
// engine are tested against. Simulated and real quantization give the same numbers (the same
// quantizer, compress/quantizer.h); only the integer kernels' accumulation order differs.
#pragma once
#include <array>
#include <optional>

#include "gannet/compress/quantizer.h"
#include "gannet/io/gpt_weights.h"
#include "gannet/nn/block.h"

namespace gannet::compress {

using autograd::Var;

// dequantize(quantize(w)); the gradient passes straight through to w.
Var fake_quantize_weight(const Var& w, const WeightQuantSpec& spec);
// Activations quantized to int8 and back (token-wise, or with static_scale > 0); the gradient
// passes straight through.
Var fake_quantize_activation(const Var& x, float static_scale);
// Activations quantized as `a` says (int8 or int4, compress::fake_quantize_activations) and back.
Var fake_quantize_activation(const Var& x, const io::ActivationQuant& a);

// The four products of a block, in order: attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj.
constexpr std::array<const char*, 4> kBlockProducts = {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"};

struct BlockQuant {
  std::array<std::optional<WeightQuantSpec>, 4> weight;  // nullopt: the weight is used as it is
  std::array<io::ActivationQuant, 4> input;              // int8 false: f32 input
};

// The block's forward (pre-LN GPT-2 block, causal) with each product's weight and input quantized
// as `q` says. x [B*T, C].
Var simulated_block_forward(const nn::Block& block, const BlockQuant& q, const Var& x, int64_t B, int64_t T);

// The input quantization of layer l's products as a quantized model records it (weights nullopt:
// a dequantized model's weights are already the quantized values).
BlockQuant recorded_block_quant(const io::GptWeights& model, int64_t layer);

}  // namespace gannet::compress
