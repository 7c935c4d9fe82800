// GPT in the GPT-2 layout: learned token and position embeddings, pre-LN blocks, final LayerNorm,
// LM head tied to the token embedding.
#pragma once
#include <vector>

#include "gannet/nn/transformer.h"

namespace gannet::models {

struct GptConfig {
  int64_t vocab_size = 8192;
  int64_t n_ctx = 256;  // longest sequence (rows of the position table)
  int64_t n_layer = 6;
  int64_t n_head = 6;
  int64_t n_embd = 384;
  float layernorm_eps = 1e-5f;
  nn::MoeConfig moe;  // Mixture-of-Experts blocks (none by default)

  void validate() const;
  bool operator==(const GptConfig&) const = default;
};

class Gpt {
 public:
  explicit Gpt(const GptConfig& config);
  const GptConfig& config() const { return config_; }

  // GPT-2 initialization from a seed.
  void init(uint64_t seed);
  // Final hidden states [B*T, C] for tokens [B, T] (i32). MoE blocks report into `moe_pass`
  // (see nn::Transformer::forward).
  nn::Var hidden(const Tensor& tokens, nn::MoePass* moe_pass = nullptr) const;
  // Logits [B*T, vocab], whole on every rank (under vocabulary parallelism, gathered over the
  // tensor-parallel group: every rank of it must call this).
  nn::Var logits(const Tensor& tokens, nn::MoePass* moe_pass = nullptr) const;
  // This rank's columns of the logits: [B*T, vocab / t] under vocabulary parallelism (rank r's
  // columns [r vocab/t, (r+1) vocab/t)), else the whole logits.
  nn::Var local_logits(const Tensor& tokens, nn::MoePass* moe_pass = nullptr) const;
  // Mean next-token cross-entropy; targets [B, T] i32 (-1 = ignore). With a `moe_pass` in training
  // mode, the MoE layers' weighted balance and z-losses are added to it. Under vocabulary
  // parallelism it never forms the whole logits.
  nn::Var loss(const Tensor& tokens, const Tensor& targets, nn::MoePass* moe_pass = nullptr) const;

  // Vocabulary parallelism (nullptr: off): the token table, which is the LM head, holds this
  // rank's rows (dist::TensorParallel cuts it and sets this); `tp` must outlive the model's use.
  void set_vocab_parallel(const nn::TensorParallelOps* tp);
  bool vocab_parallel() const { return vocab_tp_ != nullptr; }
  const nn::Var& token_embedding() const { return trunk_.token_embedding(); }

  // Random-LTD for the following training forward passes (nullptr: off); see nn/random_ltd.h.
  void set_random_ltd(const nn::RandomLtdPlan* plan) { trunk_.set_random_ltd(plan); }
  // See nn::Transformer::set_block_done_hook.
  void set_block_done_hook(const std::function<void(int64_t)>* hook) { trunk_.set_block_done_hook(hook); }
  // See nn::Transformer::set_activation_checkpointing.
  void set_activation_checkpointing(bool on, bool keep_communication = true) {
    trunk_.set_activation_checkpointing(on, keep_communication);
  }

  // The MoE layers, in block order.
  std::vector<nn::Moe*> moe_layers() { return trunk_.moe_layers(); }
  std::vector<nn::Block*> blocks() { return trunk_.blocks(); }
  // The embeddings, blocks and final LayerNorm (compressed students run them their own way).
  const nn::Transformer& trunk() const { return trunk_; }
  // Parameters by name, in a fixed order (wte, wpe, h.0..., ln_f).
  const nn::ParameterList& parameters() const { return params_; }
  // Forward FLOPs per token at sequence length T (matrix products and attention), for benchmarks;
  // an MoE block counts its router and the experts a token is active in (k, or capacity_factor
  // for expert choice).
  double flops_per_token(int64_t T) const;
  // Forward FLOPs one pass over `tokens` tokens at sequence length T computed: as flops_per_token,
  // but each MoE block counts the expert rows it processed (`pass.layers`' kept slots, after
  // capacity drops) instead of its nominal k per token. For achieved-FLOP/s figures: a token
  // dropped by the capacity limit skips the experts' products, and counting them would flatter.
  double flops_computed(int64_t T, int64_t tokens, const nn::MoePass& pass) const;

 private:
  GptConfig config_;
  nn::ParameterList params_;
  nn::Transformer trunk_;
  const nn::TensorParallelOps* vocab_tp_ = nullptr;
};

}  // namespace gannet::models
