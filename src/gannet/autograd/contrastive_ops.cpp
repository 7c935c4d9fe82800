#include "gannet/autograd/contrastive_ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "gannet/autograd/tape.h"
#include "gannet/core/error.h"

namespace gannet::autograd {

Var l2_normalize_rows(const Var& x, float eps) {
  const Tensor& X = x.value();
  GANNET_CHECK(X.dtype() == DType::f32 && X.ndim() == 2, "l2_normalize_rows: x must be a 2-D f32 tensor, got ",
               X.describe());
  const int64_t N = X.dim(0), C = X.dim(1);
  const bool rg = grad_enabled() && x.requires_grad();
  Var y(Tensor::empty({N, C}), rg);
  // The divisor of each row, kept for the backward pass.
  auto norms = std::make_shared<std::vector<float>>((size_t)N);
  for (int64_t r = 0; r < N; ++r) {
    const float* xr = X.f32() + r * C;
    double ss = 0;
    for (int64_t c = 0; c < C; ++c) ss += (double)xr[c] * xr[c];
    const float n = std::max((float)std::sqrt(ss), eps);
    (*norms)[(size_t)r] = n;
    for (int64_t c = 0; c < C; ++c) y.value().f32()[r * C + c] = xr[c] / n;
  }
  if (!rg) return y;
  tape().record([x, y, norms, N, C, eps]() {
    const Tensor& dY = y.grad();
    if (!dY.defined()) return;
    Tensor& dX = sum_target(x);
    for (int64_t r = 0; r < N; ++r) {
      const float* g = dY.f32() + r * C;
      const float* yr = y.value().f32() + r * C;
      float* dx = dX.f32() + r * C;
      const float n = (*norms)[(size_t)r];
      // Below eps the divisor is a constant: y = x / eps, a plain scaling.
      double gy = 0;
      if (n > eps)
        for (int64_t c = 0; c < C; ++c) gy += (double)g[c] * yr[c];
      for (int64_t c = 0; c < C; ++c) dx[c] += (g[c] - (float)gy * yr[c]) / n;
    }
  });
  return y;
}

Var scale_by_exp(const Var& x, const Var& log_scale, float max_log_scale) {
  const Tensor& X = x.value();
  GANNET_CHECK(X.dtype() == DType::f32, "scale_by_exp: x must be f32, got ", X.describe());
  GANNET_CHECK(log_scale.value().dtype() == DType::f32 && log_scale.value().numel() == 1,
               "scale_by_exp: log_scale must be one f32 value, got ", log_scale.value().describe());
  const float s = log_scale.value().f32()[0];
  const bool clamped = !(s < max_log_scale);
  const float factor = std::exp(clamped ? max_log_scale : s);
  const bool rg = grad_enabled() && (x.requires_grad() || log_scale.requires_grad());
  Var y(Tensor::empty(X.shape()), rg);
  const int64_t n = X.numel();
  for (int64_t i = 0; i < n; ++i) y.value().f32()[i] = X.f32()[i] * factor;
  if (!rg) return y;
  tape().record([x, log_scale, y, n, factor, clamped]() {
    const Tensor& dY = y.grad();
    if (!dY.defined()) return;
    if (x.requires_grad()) {
      Tensor& dX = sum_target(x);
      for (int64_t i = 0; i < n; ++i) dX.f32()[i] += dY.f32()[i] * factor;
    }
    if (log_scale.requires_grad()) {
      // dy/ds = y = x * factor where the clamp is off; read from x, since y's buffer may since have
      // been consumed (cross_entropy writes its gradient over its logits).
      double ds = 0;
      if (!clamped)
        for (int64_t i = 0; i < n; ++i) ds += (double)dY.f32()[i] * x.value().f32()[i];
      sum_target(log_scale).f32()[0] += (float)(ds * factor);
    }
  });
  return y;
}

}  // namespace gannet::autograd
