#include "gannet/nn/block.h"

#include <cmath>

#include "gannet/autograd/ops.h"
#include "gannet/autograd/tape.h"

namespace gannet::nn {

Attention::Attention(int64_t n_embd, int64_t heads)
    : c_attn(n_embd, 3 * n_embd), c_proj(n_embd, n_embd), n_head(heads) {
  GANNET_CHECK(heads > 0 && n_embd % heads == 0, "n_embd ", n_embd, " is not divisible by n_head ", heads);
}

Var Attention::forward(const Var& x, int64_t B, int64_t T, bool causal, const Tensor& key_mask) const {
  Var qkv = c_attn.forward(x);
  Var y = autograd::attention(qkv, B, T, n_head, causal, key_mask);
  return c_proj.forward(y);
}

void Attention::collect(const std::string& prefix, ParameterList& out) const {
  c_attn.collect(prefix + ".c_attn", out);
  c_proj.collect(prefix + ".c_proj", out);
}

Mlp::Mlp(int64_t n_embd) : c_fc(n_embd, 4 * n_embd), c_proj(4 * n_embd, n_embd) {}

Var Mlp::forward(const Var& x) const { return c_proj.forward(autograd::gelu(c_fc.forward(x))); }

void Mlp::collect(const std::string& prefix, ParameterList& out) const {
  c_fc.collect(prefix + ".c_fc", out);
  c_proj.collect(prefix + ".c_proj", out);
}

Block::Block(int64_t n_embd, int64_t n_head, float eps)
    : ln_1(n_embd, eps), ln_2(n_embd, eps), attn(n_embd, n_head), mlp(n_embd) {}

void Block::make_moe(const MoeConfig& config, int64_t block_index, int64_t experts) {
  moe.emplace(config, block_index, attn.c_proj.weight.shape()[0], experts);
  if (!config.use_residual) mlp = Mlp();
}

Var Block::forward(const Var& x, int64_t B, int64_t T, bool causal, const Tensor& key_mask, MoePass* moe_pass) const {
  Var h = autograd::add(x, attn.forward(ln_1.forward(x), B, T, causal, key_mask));
  Var a = ln_2.forward(h);
  if (!moe) return autograd::add(h, mlp.forward(a));
  MoePass local;
  local.training = autograd::grad_enabled();
  MoePass& pass = moe_pass ? *moe_pass : local;
  Var dense = moe->config.use_residual ? mlp.forward(a) : Var();
  if (!moe_token_split) return autograd::add(h, moe->forward(a, dense, pass));
  const TensorParallelOps& ts = *moe_token_split;
  Var mine = moe->forward(ts.scatter_rows(a), dense.defined() ? ts.scatter_rows(dense) : Var(), pass);
  return autograd::add(h, ts.gather_rows(mine));
}

void Block::collect(const std::string& prefix, ParameterList& out) const {
  ln_1.collect(prefix + ".ln_1", out);
  attn.collect(prefix + ".attn", out);
  ln_2.collect(prefix + ".ln_2", out);
  if (has_mlp()) mlp.collect(prefix + ".mlp", out);
  if (moe) moe->collect(prefix + ".moe", out);
}

void Block::init(Rng& rng, int64_t n_layer) {
  const float std = 0.02f, proj_std = 0.02f / std::sqrt(2.f * (float)n_layer);
  attn.c_attn.init(rng, std);
  attn.c_proj.init(rng, proj_std);
  if (has_mlp()) {
    mlp.c_fc.init(rng, std);
    mlp.c_proj.init(rng, proj_std);
  }
  if (moe) moe->init(rng, std, proj_std);
}

}  // namespace gannet::nn
