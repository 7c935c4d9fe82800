// The pre-LN transformer block (GPT-2 layout): x + attn(ln_1(x)), then x + mlp(ln_2(x)).
#pragma once
#include "gannet/nn/layernorm.h"
#include <optional>

#include "gannet/nn/linear.h"
#include "gannet/nn/moe.h"

namespace gannet::nn {

// Multi-head self-attention with fused QKV projection (c_attn) and output projection (c_proj).
struct Attention {
  Linear c_attn, c_proj;
  int64_t n_head = 1;
  Attention() = default;
  Attention(int64_t n_embd, int64_t n_head);
  // x [B*T, C]; key_mask optional u8 [B, T]
  Var forward(const Var& x, int64_t B, int64_t T, bool causal, const Tensor& key_mask) const;
  void collect(const std::string& prefix, ParameterList& out) const;
};

// Two-layer perceptron with a 4x hidden width and GELU.
struct Mlp {
  Linear c_fc, c_proj;
  Mlp() = default;
  explicit Mlp(int64_t n_embd);
  Var forward(const Var& x) const;
  void collect(const std::string& prefix, ParameterList& out) const;
};

struct Block {
  LayerNorm ln_1, ln_2;
  Attention attn;
  Mlp mlp;                 // absent (no parameters) in an MoE block without use_residual
  std::optional<Moe> moe;  // an MoE block: x + moe(ln_2(x)) (mixed with mlp(ln_2(x)) for PR-MoE)
  // Duplicate-token dropping: the MoE layer runs on this tensor-parallel rank's share of the rows
  // (nullptr: on all of them).
  const TensorParallelOps* moe_token_split = nullptr;
  Block() = default;
  Block(int64_t n_embd, int64_t n_head, float eps);
  // Makes this an MoE block of `experts` experts.
  void make_moe(const MoeConfig& config, int64_t block_index, int64_t experts);
  bool has_mlp() const { return !moe || moe->config.use_residual; }
  // The dense block's products by index, in forward order: attn.c_attn, attn.c_proj, mlp.c_fc,
  // mlp.c_proj (compress/simulated_quant.h's kBlockProducts).
  const Linear& product(int p) const {
    return p == 0 ? attn.c_attn : p == 1 ? attn.c_proj : p == 2 ? mlp.c_fc : mlp.c_proj;
  }
  // `moe_pass` collects the MoE layer's losses and statistics; nullptr: a local pass, in training
  // mode when grad mode is on.
  Var forward(const Var& x, int64_t B, int64_t T, bool causal, const Tensor& key_mask,
              MoePass* moe_pass = nullptr) const;
  void collect(const std::string& prefix, ParameterList& out) const;
  // GPT-2 initialization: N(0, 0.02), residual projections scaled by 1/sqrt(2 * n_layer).
  void init(Rng& rng, int64_t n_layer);
};

}  // namespace gannet::nn
