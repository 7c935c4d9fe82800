#include "gannet/nn/transformer.h"

#include "gannet/autograd/ops.h"
#include "gannet/autograd/tape.h"

namespace gannet::nn {

Transformer::Transformer(const TransformerConfig& c, ParameterList& params) : c_(c) {
  wte_ = make_param({c.vocab_size, c.n_embd});
  wpe_ = make_param({c.n_ctx, c.n_embd});
  params.push_back({"wte.weight", wte_, true});
  params.push_back({"wpe.weight", wpe_, true});
  h_.reserve(c.n_layer);
  for (int64_t i = 0; i < c.n_layer; ++i) {
    h_.emplace_back(c.n_embd, c.n_head, c.layernorm_eps);
    if (int64_t experts = c.moe.experts_at(i, c.n_layer)) h_.back().make_moe(c.moe, i, experts);
    h_.back().collect("h." + std::to_string(i), params);
  }
  ln_f_ = LayerNorm(c.n_embd, c.layernorm_eps);
  ln_f_.collect("ln_f", params);
}

std::vector<Moe*> Transformer::moe_layers() {
  std::vector<Moe*> out;
  for (Block& b : h_)
    if (b.moe) out.push_back(&*b.moe);
  return out;
}

std::vector<Block*> Transformer::blocks() {
  std::vector<Block*> out;
  for (Block& b : h_) out.push_back(&b);
  return out;
}

void Transformer::init(Rng& rng) {
  init_normal(wte_, rng, 0.02f);
  init_normal(wpe_, rng, 0.01f);
  for (auto& b : h_) b.init(rng, c_.n_layer);
}

Var Transformer::forward(const Tensor& tokens, bool causal, const Tensor& key_mask, MoePass* moe_pass) const {
  GANNET_CHECK(tokens.ndim() == 2, "transformer: tokens must be [B, T], got ", tokens.describe());
  const int64_t B = tokens.dim(0), T = tokens.dim(1);
  GANNET_CHECK(T <= c_.n_ctx, "transformer: sequence of ", T, " tokens is longer than n_ctx ", c_.n_ctx);
  Var x = vocab_tp_ ? vocab_tp_->embed_tokens(tokens, wte_, wpe_) : autograd::embedding(tokens, wte_, wpe_);
  const bool drop = ltd_ && autograd::grad_enabled() && ltd_->keep < T;
  if (drop)
    GANNET_CHECK(ltd_->layers.size() == h_.size(), "random-LTD plan for ", ltd_->layers.size(), " layers, model has ",
                 h_.size());
  Rng rng(drop ? ltd_->seed : 0);
  for (size_t i = 0; i < h_.size(); ++i) {
    if (block_done_ && autograd::grad_enabled())
      autograd::tape().record([hook = block_done_, i] { (*hook)((int64_t)i); });
    if (drop && ltd_->layers[i]) {
      Tensor idx = random_ltd_indices(B, T, ltd_->keep, rng);
      x = random_ltd_block(h_[i], x, B, T, ltd_->keep, idx, causal, key_mask, moe_pass);
    } else {
      x = h_[i].forward(x, B, T, causal, key_mask, moe_pass);
    }
  }
  return ln_f_.forward(x);
}

}  // namespace gannet::nn
