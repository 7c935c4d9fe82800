// Global-norm gradient clipping.
#pragma once
#include "gannet/nn/parameter.h"

namespace gannet::optim {

// sqrt of the sum of squares of every gradient, each scaled by grad_scale.
double global_grad_norm(const nn::ParameterList& params, float grad_scale = 1.f);
// The factor to multiply gradients by so that their global norm is at most max_norm (1 when
// max_norm <= 0 or the norm is already small enough).
float clip_factor(double norm, float max_norm);

}  // namespace gannet::optim
