#include "gannet/nn/block.h"

#include <cmath>

#include "gannet/autograd/ops.h"

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

Var Block::forward(const Var& x, int64_t B, int64_t T, bool causal, const Tensor& key_mask) const {
  Var h = autograd::add(x, attn.forward(ln_1.forward(x), B, T, causal, key_mask));
  return autograd::add(h, mlp.forward(ln_2.forward(h)));
}

void Block::collect(const std::string& prefix, ParameterList& out) const {
  ln_1.collect(prefix + ".ln_1", out);
  attn.collect(prefix + ".attn", out);
  ln_2.collect(prefix + ".ln_2", out);
  mlp.collect(prefix + ".mlp", out);
}

void Block::init(Rng& rng, int64_t n_layer) {
  const float std = 0.02f, proj_std = 0.02f / std::sqrt(2.f * (float)n_layer);
  attn.c_attn.init(rng, std);
  attn.c_proj.init(rng, proj_std);
  mlp.c_fc.init(rng, std);
  mlp.c_proj.init(rng, proj_std);
}

}  // namespace gannet::nn
