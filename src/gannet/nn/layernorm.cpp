#include "gannet/nn/layernorm.h"

#include "gannet/autograd/ops.h"

namespace gannet::nn {

LayerNorm::LayerNorm(int64_t dim, float eps_) : weight(make_param({dim})), bias(make_param({dim})), eps(eps_) {
  init_constant(weight, 1.f);
}

Var LayerNorm::forward(const Var& x) const { return autograd::layernorm(x, weight, bias, eps); }

void LayerNorm::collect(const std::string& prefix, ParameterList& out) const {
  out.push_back({prefix + ".weight", weight, false});
  out.push_back({prefix + ".bias", bias, false});
}

}  // namespace gannet::nn
