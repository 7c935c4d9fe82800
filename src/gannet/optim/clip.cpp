#include "gannet/optim/clip.h"

#include <cmath>

#include "gannet/kernels/adamw.h"

namespace gannet::optim {

double global_grad_norm(const nn::ParameterList& params, float grad_scale) {
  double sum = 0.0;
  for (const auto& p : params) {
    const Tensor& g = p.var.grad();
    if (g.defined()) sum += kernels::sum_squares(g.f32(), g.numel());
  }
  return std::sqrt(sum) * (double)grad_scale;
}

float clip_factor(double norm, float max_norm) {
  if (max_norm <= 0.f || !(norm > max_norm)) return 1.f;
  return (float)(max_norm / (norm + 1e-6));
}

}  // namespace gannet::optim
