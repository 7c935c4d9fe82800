// LayerNorm over the last dimension, with learned scale and shift.
#pragma once
#include "gannet/nn/parameter.h"

namespace gannet::nn {

struct LayerNorm {
  Var weight, bias;
  float eps = 1e-5f;
  LayerNorm() = default;
  explicit LayerNorm(int64_t dim, float eps = 1e-5f);
  Var forward(const Var& x) const;
  void collect(const std::string& prefix, ParameterList& out) const;
};

}  // namespace gannet::nn
