#include "gannet/models/gpt.h"

#include "gannet/autograd/ops.h"

namespace gannet::models {

void GptConfig::validate() const {
  GANNET_CHECK(vocab_size > 0 && n_ctx > 0 && n_layer > 0 && n_head > 0 && n_embd > 0,
               "model config: vocab_size, n_ctx, n_layer, n_head and n_embd must be positive");
  GANNET_CHECK(n_embd % n_head == 0, "model config: n_embd ", n_embd, " is not divisible by n_head ", n_head);
  GANNET_CHECK(layernorm_eps > 0.f, "model config: layernorm_eps must be positive");
}

Gpt::Gpt(const GptConfig& config) : config_(config) {
  config_.validate();
  const int64_t C = config_.n_embd;
  wte_ = nn::make_param({config_.vocab_size, C});
  wpe_ = nn::make_param({config_.n_ctx, C});
  params_.push_back({"wte.weight", wte_, true});
  params_.push_back({"wpe.weight", wpe_, true});
  h_.reserve(config_.n_layer);
  for (int64_t i = 0; i < config_.n_layer; ++i) {
    h_.emplace_back(C, config_.n_head, config_.layernorm_eps);
    h_.back().collect("h." + std::to_string(i), params_);
  }
  ln_f_ = nn::LayerNorm(C, config_.layernorm_eps);
  ln_f_.collect("ln_f", params_);
}

void Gpt::init(uint64_t seed) {
  Rng rng(seed);
  nn::init_normal(wte_, rng, 0.02f);
  nn::init_normal(wpe_, rng, 0.01f);
  for (auto& b : h_) b.init(rng, config_.n_layer);
}

nn::Var Gpt::hidden(const Tensor& tokens) const {
  GANNET_CHECK(tokens.ndim() == 2, "gpt: tokens must be [B, T], got ", tokens.describe());
  const int64_t B = tokens.dim(0), T = tokens.dim(1);
  GANNET_CHECK(T <= config_.n_ctx, "gpt: sequence of ", T, " tokens is longer than n_ctx ", config_.n_ctx);
  nn::Var x = autograd::embedding(tokens, wte_, wpe_);
  for (const auto& b : h_) x = b.forward(x, B, T, /*causal=*/true, Tensor());
  return ln_f_.forward(x);
}

nn::Var Gpt::logits(const Tensor& tokens) const { return autograd::linear(hidden(tokens), wte_, nn::Var()); }

nn::Var Gpt::loss(const Tensor& tokens, const Tensor& targets) const {
  GANNET_CHECK(targets.shape() == tokens.shape(), "gpt: targets ", targets.describe(), " do not match tokens ",
               tokens.describe());
  return autograd::cross_entropy(logits(tokens), targets.view({targets.numel()}));
}

double Gpt::flops_per_token(int64_t T) const {
  const double C = (double)config_.n_embd, L = (double)config_.n_layer, V = (double)config_.vocab_size;
  double matmul = 2.0 * (L * 12.0 * C * C + V * C);  // QKV 3C^2, proj C^2, MLP 8C^2; LM head
  double attn = L * 2.0 * 2.0 * C * (double)T / 2.0;  // QK^T and PV over half the keys (causal)
  return matmul + attn;
}

}  // namespace gannet::models
