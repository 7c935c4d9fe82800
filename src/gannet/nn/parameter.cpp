#include "gannet/nn/parameter.h"

namespace gannet::nn {

Var make_param(const Shape& shape) { return Var(Tensor::zeros(shape), true); }

void init_normal(const Var& v, Rng& rng, float std) {
  float* p = v.value().f32();
  for (int64_t i = 0, n = v.value().numel(); i < n; ++i) p[i] = std * rng.normal();
}

void init_constant(const Var& v, float value) { v.value().fill(value); }

void zero_grad(const ParameterList& params) {
  for (const auto& p : params) {
    Tensor& g = p.var.grad();
    if (!g.defined()) g = Tensor::empty(p.var.shape());
    g.zero();
  }
}

int64_t count_elements(const ParameterList& params) {
  int64_t n = 0;
  for (const auto& p : params) n += p.var.value().numel();
  return n;
}

}  // namespace gannet::nn
