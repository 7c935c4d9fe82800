#include "gannet/kernels/adamw.h"

#include <cmath>

#include "gannet/core/dispatch.h"
#include "gannet/core/error.h"

namespace gannet::kernels {

void check_adamw_step(int64_t step) { GANNET_CHECK(step >= 1, "adamw: step ", step, " must count from 1"); }

namespace ref {
// The reference computes each element in double, straight from the definition.
void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int64_t step, float grad_scale) {
  check_adamw_step(step);
  const double b1 = beta1, b2 = beta2;
  const double bc1 = 1.0 - std::pow(b1, (double)step), bc2 = 1.0 - std::pow(b2, (double)step);
  for (int64_t i = 0; i < n; ++i) {
    const double g = (double)grad[i] * grad_scale;
    double p = param[i];
    p -= (double)lr * weight_decay * p;
    const double mi = b1 * m[i] + (1.0 - b1) * g;
    const double vi = b2 * v[i] + (1.0 - b2) * g * g;
    p -= (double)lr * (mi / bc1) / (std::sqrt(vi / bc2) + eps);
    m[i] = (float)mi;
    v[i] = (float)vi;
    param[i] = (float)p;
  }
}

double sum_squares(const float* x, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += (double)x[i] * x[i];
  return s;
}
}  // namespace ref

void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int64_t step, float grad_scale) {
  GANNET_DISPATCH(adamw_update, param, grad, m, v, n, lr, beta1, beta2, eps, weight_decay, step, grad_scale);
}
double sum_squares(const float* x, int64_t n) { GANNET_DISPATCH(sum_squares, x, n); }

}  // namespace gannet::kernels
