// The seam of tensor parallelism (Megatron-LM's split of a transformer block): a column-parallel
// Linear holds a slice of the output rows and takes its whole input through copy_to_parallel
// (identity forward, gradient all-reduced over the tensor-parallel group backward); a row-parallel
// Linear holds a slice of the input columns, and its partial products are summed by
// reduce_from_parallel (all-reduce forward, identity backward) before its bias is added. On one
// process there is no TensorParallelOps and every Linear is whole; dist/ implements it over MPI.
#pragma once
#include "gannet/autograd/variable.h"

namespace gannet::nn {

enum class LinearSplit { whole, column, row };

class TensorParallelOps {
 public:
  virtual ~TensorParallelOps() = default;
  virtual autograd::Var copy_to_parallel(const autograd::Var& x) const = 0;
  virtual autograd::Var reduce_from_parallel(const autograd::Var& x) const = 0;
};

}  // namespace gannet::nn
