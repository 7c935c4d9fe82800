#include "gannet/compress/layerwise_gpt.h"

#include "gannet/autograd/ops.h"

namespace gannet::compress {

namespace {
Var param(const io::GptWeights& w, const std::string& name, const Shape& shape) {
  return Var(w.dense(name, shape).clone(), /*requires_grad=*/true);
}
}  // namespace

LayerwiseGpt::LayerwiseGpt(const io::GptWeights& w) : config_(w.config) {
  const models::GptConfig& c = config_;
  c.validate();
  GANNET_CHECK(!c.moe.enabled(), "layer-wise GPT: Mixture-of-Experts blocks are not supported yet (dense blocks only)");
  const int64_t C = c.n_embd;
  wte_ = param(w, "wte.weight", {c.vocab_size, C});
  wpe_ = param(w, "wpe.weight", {c.n_ctx, C});
  head_ = w.quantized.count("lm_head.weight") ? param(w, "lm_head.weight", {c.vocab_size, C}) : wte_;
  for (int64_t l = 0; l < c.n_layer; ++l) {
    blocks_.emplace_back(C, c.n_head, c.layernorm_eps);
    for (nn::Parameter& p : block_parameters(l)) p.var.value().copy_from(w.dense(p.name, p.var.shape()));
  }
  ln_f_ = nn::LayerNorm(C, c.layernorm_eps);
  ln_f_.weight.value().copy_from(w.dense("ln_f.weight", {C}));
  ln_f_.bias.value().copy_from(w.dense("ln_f.bias", {C}));
}

Var LayerwiseGpt::embed(const Tensor& tokens) const { return autograd::embedding(tokens, wte_, wpe_); }

Var LayerwiseGpt::logits(const Var& hidden) const { return autograd::linear(ln_f_.forward(hidden), head_, Var()); }

nn::ParameterList LayerwiseGpt::block_parameters(int64_t l) const {
  nn::ParameterList out;
  blocks_[l].collect(str("h.", l), out);
  return out;
}

std::array<Tensor, 4> block_product_inputs(const nn::Block& b, const Var& x, int64_t B, int64_t T) {
  Var n1 = b.ln_1.forward(x);
  Var a = autograd::attention(b.attn.c_attn.forward(n1), B, T, b.attn.n_head, true);
  Var h = autograd::add(x, b.attn.c_proj.forward(a));
  Var n2 = b.ln_2.forward(h);
  Var g = autograd::gelu(b.mlp.c_fc.forward(n2));
  return {n1.value(), a.value(), n2.value(), g.value()};
}

void check_calibration_batches(const std::vector<Tensor>& batches, const models::GptConfig& c) {
  GANNET_CHECK(!batches.empty(), "quantize: no calibration batches");
  for (const Tensor& b : batches) {
    GANNET_CHECK(b.dtype() == DType::i32 && b.ndim() == 2 && b.dim(1) <= c.n_ctx, "quantize: calibration batch ",
                 b.describe(), " is not [B, T <= ", c.n_ctx, "] i32");
    for (int64_t i = 0; i < b.numel(); ++i)
      GANNET_CHECK(b.data<int32_t>()[i] >= 0 && b.data<int32_t>()[i] < c.vocab_size, "quantize: calibration token ",
                   b.data<int32_t>()[i], " outside the vocabulary");
  }
}

}  // namespace gannet::compress
