#include "gannet/kernels/gelu.h"

#include <cmath>

#include "gannet/core/dispatch.h"

namespace gannet::kernels {

namespace ref {
// The reference computes in double, straight from the definition.
constexpr double kC = 0.7978845608028654;  // sqrt(2/pi)

void gelu_forward(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    double v = x[i];
    y[i] = (float)(0.5 * v * (1.0 + std::tanh(kC * (v + 0.044715 * v * v * v))));
  }
}

void gelu_backward(const float* x, const float* dy, float* dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    double v = x[i];
    double t = std::tanh(kC * (v + 0.044715 * v * v * v));
    double dt = (1.0 - t * t) * kC * (1.0 + 3.0 * 0.044715 * v * v);
    dx[i] = (float)(dy[i] * (0.5 * (1.0 + t) + 0.5 * v * dt));
  }
}
}  // namespace ref

void gelu_forward(const float* x, float* y, int64_t n) { GANNET_DISPATCH(gelu_forward, x, y, n); }
void gelu_backward(const float* x, const float* dy, float* dx, int64_t n) {
  GANNET_DISPATCH(gelu_backward, x, dy, dx, n);
}

}  // namespace gannet::kernels
