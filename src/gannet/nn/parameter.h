// Named trainable parameters, collected from modules in a fixed order (the checkpoint order).
#pragma once
#include <string>
#include <vector>

#include "gannet/autograd/variable.h"
#include "gannet/core/rng.h"

namespace gannet::nn {

using autograd::Var;

struct Parameter {
  std::string name;
  Var var;
  bool decay;  // weight decay applies (matrices and embeddings, not biases or norms)
};

using ParameterList = std::vector<Parameter>;

// A new trainable f32 parameter.
Var make_param(const Shape& shape);
// Fills with N(0, std^2) / a constant.
void init_normal(const Var& v, Rng& rng, float std);
void init_constant(const Var& v, float value);
// Sets every parameter's gradient to zero (allocating it if needed).
void zero_grad(const ParameterList& params);
int64_t count_elements(const ParameterList& params);

}  // namespace gannet::nn
