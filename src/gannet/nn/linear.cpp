#include "gannet/nn/linear.h"

#include "gannet/autograd/ops.h"

namespace gannet::nn {

Linear::Linear(int64_t in, int64_t out, bool with_bias) : weight(make_param({out, in})) {
  if (with_bias) bias = make_param({out});
}

Var Linear::forward(const Var& x) const { return autograd::linear(x, weight, bias); }

void Linear::collect(const std::string& prefix, ParameterList& out) const {
  out.push_back({prefix + ".weight", weight, true});
  if (bias.defined()) out.push_back({prefix + ".bias", bias, false});
}

void Linear::init(Rng& rng, float std) {
  init_normal(weight, rng, std);
  if (bias.defined()) init_constant(bias, 0.f);
}

}  // namespace gannet::nn
