// Linear layer y = x W^T + b, weight stored [out, in] (PyTorch's layout). Under tensor parallelism
// it holds a column or row slice of the weight (nn/tensor_parallel.h).
#pragma once
#include "gannet/nn/parameter.h"
#include "gannet/nn/tensor_parallel.h"

namespace gannet::nn {

struct Linear {
  Var weight, bias;  // bias undefined when the layer has none
  LinearSplit split = LinearSplit::whole;
  const TensorParallelOps* tp = nullptr;  // set with a column or row split
  Linear() = default;
  Linear(int64_t in, int64_t out, bool with_bias = true);
  Var forward(const Var& x) const;
  void collect(const std::string& prefix, ParameterList& out) const;
  void init(Rng& rng, float std);
};

}  // namespace gannet::nn
