#include "gannet/nn/linear.h"

#include "gannet/autograd/ops.h"

namespace gannet::nn {

Linear::Linear(int64_t in, int64_t out, bool with_bias) : weight(make_param({out, in})) {
  if (with_bias) bias = make_param({out});
}

Var Linear::forward(const Var& x) const {
  if (split == LinearSplit::whole || tp == nullptr) return autograd::linear(x, weight, bias);
  if (split == LinearSplit::column) return autograd::linear(tp->copy_to_parallel(x), weight, bias);
  Var partial = tp->reduce_from_parallel(autograd::linear(x, weight, Var()));
  return bias.defined() ? autograd::add_bias(partial, bias) : partial;
}

void Linear::collect(const std::string& prefix, ParameterList& out) const {
  out.push_back({prefix + ".weight", weight, true});
  if (bias.defined()) out.push_back({prefix + ".bias", bias, false});
}

void Linear::init(Rng& rng, float std) {
  init_normal(weight, rng, std);
  if (bias.defined()) init_constant(bias, 0.f);
}

}  // namespace gannet::nn
