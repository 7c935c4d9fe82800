#include "gannet/models/encoder.h"

#include "gannet/autograd/ops.h"

namespace gannet::models {

void EncoderConfig::validate() const {
  GANNET_CHECK(vocab_size > 0 && n_ctx > 0 && n_layer > 0 && n_head > 0 && n_embd > 0 && num_classes > 1,
               "encoder config: sizes must be positive and num_classes at least 2");
  GANNET_CHECK(n_embd % n_head == 0, "encoder config: n_embd ", n_embd, " is not divisible by n_head ", n_head);
}

Encoder::Encoder(const EncoderConfig& config) : config_(config) {
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
  head_ = nn::Linear(C, config_.num_classes);
  head_.collect("head", params_);
}

void Encoder::init(uint64_t seed) {
  Rng rng(seed);
  nn::init_normal(wte_, rng, 0.02f);
  nn::init_normal(wpe_, rng, 0.01f);
  for (auto& b : h_) b.init(rng, config_.n_layer);
  head_.init(rng, 0.02f);
}

nn::Var Encoder::logits(const Tensor& tokens, const Tensor& mask) const {
  GANNET_CHECK(tokens.ndim() == 2, "encoder: tokens must be [B, T], got ", tokens.describe());
  const int64_t B = tokens.dim(0), T = tokens.dim(1);
  GANNET_CHECK(T <= config_.n_ctx, "encoder: sequence of ", T, " tokens is longer than n_ctx ", config_.n_ctx);
  nn::Var x = autograd::embedding(tokens, wte_, wpe_);
  for (const auto& b : h_) x = b.forward(x, B, T, /*causal=*/false, mask);
  x = ln_f_.forward(x);
  return head_.forward(autograd::masked_mean_pool(x, B, T, mask));
}

nn::Var Encoder::loss(const Tensor& tokens, const Tensor& mask, const Tensor& labels) const {
  GANNET_CHECK(labels.numel() == tokens.dim(0), "encoder: ", labels.numel(), " labels for ", tokens.dim(0),
               " sequences");
  return autograd::cross_entropy(logits(tokens, mask), labels.view({labels.numel()}));
}

}  // namespace gannet::models
