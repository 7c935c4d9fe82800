// The shared trunk of GPT and the encoder: token + position embeddings, a stack of pre-LN
// blocks, and a final LayerNorm. Parameter names follow GPT-2 (wte, wpe, h.<i>..., ln_f).
#pragma once
#include <functional>
#include <vector>

#include "gannet/nn/block.h"
#include "gannet/nn/random_ltd.h"

namespace gannet::nn {

struct TransformerConfig {
  int64_t vocab_size, n_ctx, n_layer, n_head, n_embd;
  float layernorm_eps;
  MoeConfig moe;  // which blocks are MoE blocks, and their options (empty: all dense)
};

class Transformer {
 public:
  Transformer() = default;
  // Creates the parameters and appends them to `params`, in checkpoint order.
  Transformer(const TransformerConfig& c, ParameterList& params);
  // GPT-2 initialization.
  void init(Rng& rng);
  // Final hidden states [B*T, C] for tokens [B, T] (i32); key_mask optional u8 [B, T]. MoE blocks
  // report into `moe_pass` (nullptr: they run as in training when grad mode is on, else as in
  // evaluation, and their losses are dropped).
  Var forward(const Tensor& tokens, bool causal, const Tensor& key_mask, MoePass* moe_pass = nullptr) const;
  const Var& token_embedding() const { return wte_; }
  const Var& position_embedding() const { return wpe_; }
  // Read access for forwards that run the modules their own way (compress/xtc_forward.h).
  int64_t n_layer() const { return (int64_t)h_.size(); }
  const Block& block(int64_t i) const { return h_.at((size_t)i); }
  const LayerNorm& final_norm() const { return ln_f_; }
  // Vocabulary parallelism for the following forward passes (nullptr: off): wte holds this rank's
  // rows of the table, and the embedding sums the ranks' lookups through `tp`, which must outlive them.
  void set_vocab_parallel(const TensorParallelOps* tp) { vocab_tp_ = tp; }
  // The MoE layers, in block order (for expert parallelism to place their experts).
  std::vector<Moe*> moe_layers();
  // The blocks, in order (for tensor parallelism to split their products).
  std::vector<Block*> blocks();
  // Token dropping for the following forward passes while grad mode is on (nullptr: none). The
  // plan must outlive those passes.
  void set_random_ltd(const RandomLtdPlan* plan) { ltd_ = plan; }
  // Called with i during the backward pass of the following forward passes, as soon as block i's
  // parameters have their final gradients (a marker recorded on the tape before the block's ops);
  // data parallelism starts reducing them then. nullptr: none. The function must outlive the passes.
  void set_block_done_hook(const std::function<void(int64_t)>* hook) { block_done_ = hook; }
  // Activation checkpointing of every block in the following training passes (see
  // autograd/checkpoint.h): each block keeps only its input and output, and runs again in the
  // backward pass. keep_communication: its collectives keep their results for the recomputation.
  void set_activation_checkpointing(bool on, bool keep_communication = true) {
    checkpoint_ = on;
    keep_communication_ = keep_communication;
  }

 private:
  // run(x, pass) as one activation-checkpointed region.
  Var checkpointed_block(const std::function<Var(const Var&, MoePass*)>& run, const Var& x, MoePass* moe_pass) const;
  TransformerConfig c_{};
  Var wte_, wpe_;
  std::vector<Block> h_;
  LayerNorm ln_f_;
  const RandomLtdPlan* ltd_ = nullptr;
  const TensorParallelOps* vocab_tp_ = nullptr;
  const std::function<void(int64_t)>* block_done_ = nullptr;
  bool checkpoint_ = false, keep_communication_ = true;
};

}  // namespace gannet::nn
