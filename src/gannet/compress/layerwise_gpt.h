// A GPT held as separate pieces (embeddings, blocks, final LayerNorm) with f32 weights, so that
// compression tools can run it one block at a time: calibration statistics, layer-by-layer
// distillation (the teacher's hidden states and the student's blocks), and the simulated
// reference of a quantized model.
#pragma once
#include <array>
#include <vector>

#include "gannet/io/gpt_weights.h"
#include "gannet/nn/block.h"

namespace gannet::compress {

using autograd::Var;

class LayerwiseGpt {
 public:
  // f32 copies of the weights (quantized ones dequantized). Dense models only: throws on a
  // Mixture-of-Experts model.
  explicit LayerwiseGpt(const io::GptWeights& weights);
  const models::GptConfig& config() const { return config_; }

  // Token + position embeddings of tokens [B, T] (i32): [B*T, C].
  Var embed(const Tensor& tokens) const;
  nn::Block& block(int64_t l) { return blocks_[l]; }
  const nn::Block& block(int64_t l) const { return blocks_[l]; }
  // Final LayerNorm and the tied LM head (lm_head.weight when the model has one apart): [B*T, V].
  Var logits(const Var& hidden) const;
  Var final_norm(const Var& hidden) const { return ln_f_.forward(hidden); }
  const Var& head() const { return head_; }
  // A block's parameters, named as in the model file ("h.{l}.attn.c_attn.weight", ...).
  nn::ParameterList block_parameters(int64_t l) const;

 private:
  models::GptConfig config_;
  Var wte_, wpe_, head_;
  std::vector<nn::Block> blocks_;
  nn::LayerNorm ln_f_;
};

// The inputs of a block's four products (kBlockProducts' order) as the float block computes them
// on hidden states x [B*T, C] (causal attention).
std::array<Tensor, 4> block_product_inputs(const nn::Block& b, const Var& x, int64_t B, int64_t T);

// Throws one line unless every batch is i32 [B, T <= n_ctx] of tokens in the vocabulary (and there
// is one).
void check_calibration_batches(const std::vector<Tensor>& batches, const models::GptConfig& c);

}  // namespace gannet::compress
