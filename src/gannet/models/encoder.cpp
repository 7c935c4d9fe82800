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
  trunk_ = nn::Transformer({config_.vocab_size, config_.n_ctx, config_.n_layer, config_.n_head, config_.n_embd,
                            config_.layernorm_eps, {}},
                           params_);
  head_ = nn::Linear(config_.n_embd, config_.num_classes);
  head_.collect("head", params_);
}

void Encoder::init(uint64_t seed) {
  Rng rng(seed);
  trunk_.init(rng);
  head_.init(rng, 0.02f);
}

nn::Var Encoder::logits(const Tensor& tokens, const Tensor& mask) const {
  nn::Var x = trunk_.forward(tokens, /*causal=*/false, mask);
  return head_.forward(autograd::masked_mean_pool(x, tokens.dim(0), tokens.dim(1), mask));
}

nn::Var Encoder::loss(const Tensor& tokens, const Tensor& mask, const Tensor& labels) const {
  GANNET_CHECK(labels.numel() == tokens.dim(0), "encoder: ", labels.numel(), " labels for ", tokens.dim(0),
               " sequences");
  return autograd::cross_entropy(logits(tokens, mask), labels.view({labels.numel()}));
}

}  // namespace gannet::models
