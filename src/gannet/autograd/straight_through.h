// The straight-through estimator: an op whose forward is any function of x (a rounding, a
// quantizer) and whose backward treats it as the identity, dy/dx = I (Bengio et al. 2013; what
// fake quantization trains through).
#pragma once
#include <functional>

#include "gannet/autograd/variable.h"

namespace gannet::autograd {

// y = forward(x) (forward writes y's value, a tensor of x's shape, from x's value); y's gradient
// is added to x's unchanged.
Var straight_through(const Var& x, const std::function<void(const Tensor& x, Tensor& y)>& forward);

// The same with a 0/1 mask (f32, x's shape) on the gradient: x's gradient gets y's times the mask
// (a forward that multiplies x by the mask before quantizing passes no gradient to the masked-out
// entries: the masked fine-tuning of pruning).
Var straight_through_masked(const Var& x, const Tensor& mask,
                            const std::function<void(const Tensor& x, Tensor& y)>& forward);

}  // namespace gannet::autograd
