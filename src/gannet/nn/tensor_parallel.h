// The seam of tensor parallelism (Megatron-LM's split of a transformer block): a column-parallel
// Linear holds a slice of the output rows and takes its whole input through copy_to_parallel
// (identity forward, gradient all-reduced over the tensor-parallel group backward); a row-parallel
// Linear holds a slice of the input columns, and its partial products are summed by
// reduce_from_parallel (all-reduce forward, identity backward) before its bias is added. On one
// process there is no TensorParallelOps and every Linear is whole; dist/ implements it over MPI.
// Duplicate-token dropping (DeepSpeed-TED) runs an MoE layer on 1/t of the rows on each rank of the
// group, whose rows are all the same: scatter_rows keeps this rank's share (backward: all-gather),
// gather_rows joins the shares again (backward: this rank's share of the gradient).
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
  virtual int size() const = 0;
};

}  // namespace gannet::nn
