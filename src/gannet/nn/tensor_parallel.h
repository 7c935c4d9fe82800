// The seam of tensor parallelism (Megatron-LM's split of a transformer block): a column-parallel
// Linear holds a slice of the output rows and takes its whole input through copy_to_parallel
// (identity forward, gradient all-reduced over the tensor-parallel group backward); a row-parallel
// Linear holds a slice of the input columns, and its partial products are summed by
// reduce_from_parallel (all-reduce forward, identity backward) before its bias is added. On one
// process there is no TensorParallelOps and every Linear is whole; dist/ implements it over MPI.
// Duplicate-token dropping (DeepSpeed-TED) runs an MoE layer on 1/t of the rows on each rank of the
// group, whose rows are all the same: scatter_rows keeps this rank's share (backward: all-gather),
// gather_rows joins the shares again (backward: this rank's share of the gradient).
// Vocabulary parallelism splits the token table (the tied LM head) by rows: embed_tokens sums the
// ranks' partial lookups, vocab_cross_entropy takes the loss from this rank's columns of the
// logits, and gather_vocab joins those columns into the whole logits.
#pragma once
#include "gannet/autograd/variable.h"

namespace gannet::nn {

enum class LinearSplit { whole, column, row };

class TensorParallelOps {
 public:
  virtual ~TensorParallelOps() = default;
  virtual autograd::Var copy_to_parallel(const autograd::Var& x) const = 0;
  virtual autograd::Var reduce_from_parallel(const autograd::Var& x) const = 0;
  virtual autograd::Var scatter_rows(const autograd::Var& x) const = 0;
  virtual autograd::Var gather_rows(const autograd::Var& x) const = 0;
  // Token + position embedding [B*T, C] from this rank's rows of the token table.
  virtual autograd::Var embed_tokens(const Tensor& tokens, const autograd::Var& wte_local,
                                     const autograd::Var& wpe) const = 0;
  // Mean cross-entropy of the whole logits from this rank's columns [N, V/t] (overwritten, as
  // autograd::cross_entropy overwrites its logits); targets [N] i32 (-1 = ignore).
  virtual autograd::Var vocab_cross_entropy(const autograd::Var& local_logits, const Tensor& targets) const = 0;
  // The whole logits [N, V] from every rank's columns [N, V/t].
  virtual autograd::Var gather_vocab(const autograd::Var& local_logits) const = 0;
  virtual int size() const = 0;
};

}  // namespace gannet::nn
