#include "gannet/models/gpt.h"

#include <cmath>

#include "gannet/autograd/ops.h"
#include "gannet/core/limits.h"

namespace gannet::models {

void GptConfig::validate() const {
  GANNET_CHECK(vocab_size > 0 && n_ctx > 0 && n_layer > 0 && n_head > 0 && n_embd > 0,
               "model config: vocab_size, n_ctx, n_layer, n_head and n_embd must be positive");
  auto at_most = [](const char* name, int64_t v, int64_t limit) {
    GANNET_CHECK(v <= limit, "model config: ", name, " ", v, " is larger than the limit ", limit);
  };
  at_most("vocab_size", vocab_size, kMaxVocabSize);
  at_most("n_ctx", n_ctx, kMaxContext);
  at_most("n_layer", n_layer, kMaxLayers);
  at_most("n_embd", n_embd, kMaxEmbedding);
  GANNET_CHECK(n_embd % n_head == 0, "model config: n_embd ", n_embd, " is not divisible by n_head ", n_head);
  GANNET_CHECK(std::isfinite(layernorm_eps) && layernorm_eps > 0.f, "model config: layernorm_eps must be positive");
  for (int64_t e : moe.num_experts) at_most("moe.num_experts", e, kMaxExperts);
  moe.validate(n_layer);
}

Gpt::Gpt(const GptConfig& config) : config_(config) {
  config_.validate();
  trunk_ = nn::Transformer({config_.vocab_size, config_.n_ctx, config_.n_layer, config_.n_head, config_.n_embd,
                            config_.layernorm_eps, config_.moe},
                           params_);
}

void Gpt::init(uint64_t seed) {
  Rng rng(seed);
  trunk_.init(rng);
}

nn::Var Gpt::hidden(const Tensor& tokens, nn::MoePass* moe_pass) const {
  return trunk_.forward(tokens, /*causal=*/true, Tensor(), moe_pass);
}

void Gpt::set_vocab_parallel(const nn::TensorParallelOps* tp) {
  vocab_tp_ = tp;
  trunk_.set_vocab_parallel(tp);
}

nn::Var Gpt::local_logits(const Tensor& tokens, nn::MoePass* moe_pass) const {
  nn::Var h = hidden(tokens, moe_pass);
  // Under vocabulary parallelism each rank's logits depend on all of h: its gradient is summed.
  if (vocab_tp_) h = vocab_tp_->copy_to_parallel(h);
  return autograd::linear(h, trunk_.token_embedding(), nn::Var());
}

nn::Var Gpt::logits(const Tensor& tokens, nn::MoePass* moe_pass) const {
  nn::Var mine = local_logits(tokens, moe_pass);
  return vocab_tp_ ? vocab_tp_->gather_vocab(mine) : mine;
}

nn::Var Gpt::loss(const Tensor& tokens, const Tensor& targets, nn::MoePass* moe_pass) const {
  GANNET_CHECK(targets.shape() == tokens.shape(), "gpt: targets ", targets.describe(), " do not match tokens ",
               tokens.describe());
  const Tensor flat = targets.view({targets.numel()});
  nn::Var mine = local_logits(tokens, moe_pass);
  nn::Var ce = vocab_tp_ ? vocab_tp_->vocab_cross_entropy(mine, flat) : autograd::cross_entropy(mine, flat);
  if (moe_pass && moe_pass->aux_loss.defined()) return autograd::add(ce, moe_pass->aux_loss);
  return ce;
}

namespace {
// Expert slots an MoE block's token is nominally active in: k, or for expert choice the capacity
// factor times k.
double nominal_active_experts(const nn::MoeConfig& m) {
  return m.router == "expert_choice" ? m.capacity_factor * (double)m.k : (double)m.k;
}
}  // namespace

double Gpt::flops_per_token(int64_t T) const {
  const double C = (double)config_.n_embd, L = (double)config_.n_layer, V = (double)config_.vocab_size;
  double mlp_macs = 0;  // MLP or MoE multiply-adds per token, summed over blocks
  for (int64_t i = 0; i < config_.n_layer; ++i) {
    const int64_t E = config_.moe.experts_at(i, config_.n_layer);
    if (E == 0) {
      mlp_macs += 8.0 * C * C;
      continue;
    }
    const double active = nominal_active_experts(config_.moe);
    mlp_macs += (double)E * C + active * 8.0 * C * C + (config_.moe.use_residual ? 8.0 * C * C + 2.0 * C : 0.0);
  }
  double matmul = 2.0 * (L * 4.0 * C * C + mlp_macs + V * C);  // QKV 3C^2, proj C^2, MLP 8C^2; LM head
  double attn = L * 2.0 * 2.0 * C * (double)T / 2.0;  // QK^T and PV over half the keys (causal)
  return matmul + attn;
}

double Gpt::flops_computed(int64_t T, int64_t tokens, const nn::MoePass& pass) const {
  const double C = (double)config_.n_embd;
  double flops = (double)tokens * flops_per_token(T);
  for (const nn::MoeLayerStats& l : pass.layers) {
    double kept = 0;
    for (int64_t k : l.kept) kept += (double)k;
    // Each expert row is two products of 4C x C multiply-adds: 2 x 8C^2 FLOPs.
    flops += 2.0 * 8.0 * C * C * (kept - nominal_active_experts(config_.moe) * (double)l.tokens);
  }
  return flops;
}

}  // namespace gannet::models
