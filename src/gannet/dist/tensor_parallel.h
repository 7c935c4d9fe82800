// Tensor parallelism, Megatron-LM style, over the tensor-parallel group of t ranks. In every block
// attention is split by heads (c_attn column-parallel: each rank keeps its heads' rows of Q, K and
// V; c_proj row-parallel) and the MLP by hidden units (c_fc column-parallel, c_proj row-parallel),
// so each block needs one all-reduce forward and one backward per half. With vocabulary parallelism
// (the default) the token table wte [V, C], which is also the tied LM head, is split by rows too
// (see dist/vocab_parallel.h): one all-reduce for the embedding, one backward for the LM head's
// input, and two small ones in the cross-entropy per forward pass. LayerNorms, the row-parallel
// biases and the position table are the same on every rank of the group. MoE experts are not split
// by it (expert parallelism places them).
#pragma once
#include <vector>

#include "gannet/dist/communicator.h"
#include "gannet/dist/placement.h"
#include "gannet/models/gpt.h"
#include "gannet/nn/tensor_parallel.h"

namespace gannet::dist {

struct TensorParallelOptions {
  bool duplicate_token_dropping = false;  // parallel.duplicate_token_dropping
  bool vocab_parallel = true;             // parallel.vocab_parallel: split wte by rows
};

class TensorParallel final : public nn::TensorParallelOps, public ParameterPlacement {
 public:
  // Cuts the block products of `model` (initialized whole), and with vocabulary parallelism its
  // token table, to this rank's slices and sets the Linears' splits; n_head, 4 n_embd and (with
  // vocabulary parallelism) vocab_size must be multiples of the group size. `group` and `model`
  // outlive this.
  TensorParallel(models::Gpt& model, Communicator& group, const TensorParallelOptions& options = {});
  TensorParallel(const TensorParallel&) = delete;
  TensorParallel& operator=(const TensorParallel&) = delete;

  autograd::Var copy_to_parallel(const autograd::Var& x) const override;
  autograd::Var reduce_from_parallel(const autograd::Var& x) const override;
  autograd::Var scatter_rows(const autograd::Var& x) const override;
  autograd::Var gather_rows(const autograd::Var& x) const override;
  autograd::Var embed_tokens(const Tensor& tokens, const autograd::Var& wte_local,
                             const autograd::Var& wpe) const override;
  autograd::Var vocab_cross_entropy(const autograd::Var& local_logits, const Tensor& targets) const override;
  autograd::Var gather_vocab(const autograd::Var& local_logits) const override;
  int size() const override { return group_.size(); }

  bool owns(size_t i) const override { return i < specs_.size() && specs_[i].split != nn::LinearSplit::whole; }
  void gather(size_t i, const Tensor& local, Tensor& whole) const override;
  void slice(size_t i, const Tensor& whole, Tensor& local) const override;
  // A column split: this rank's rows of each of the `parts` blocks; a row split: its columns.
  std::vector<Box> boxes(size_t i, const Shape& whole) const override;
  // Per parameter: whether each rank of the group holds a different slice of it.
  std::vector<bool> sliced() const;

 private:
  // A column split keeps rows: the whole tensor is `parts` blocks of `rows` rows of `width` floats,
  // and rank r keeps rows [r rows/t, (r+1) rows/t) of each block. A row split keeps columns: `rows`
  // rows of `width` floats, rank r keeping columns [r width/t, (r+1) width/t).
  struct Spec {
    nn::LinearSplit split = nn::LinearSplit::whole;
    int64_t parts = 1, rows = 0, width = 0;
  };
  void cut(nn::Var& v, const Spec& spec);
  Communicator& group_;
  std::vector<Spec> specs_;
};

}  // namespace gannet::dist
