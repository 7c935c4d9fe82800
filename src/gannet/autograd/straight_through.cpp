#include "gannet/autograd/straight_through.h"

#include "gannet/autograd/tape.h"
#include "gannet/core/error.h"
#include "gannet/kernels/bias.h"

namespace gannet::autograd {

Var straight_through(const Var& x, const std::function<void(const Tensor& x, Tensor& y)>& forward) {
  const Tensor& X = x.value();
  const bool rg = grad_enabled() && x.requires_grad();
  Var y(Tensor::empty(X.shape()), rg);
  forward(X, y.value());
  if (!rg) return y;
  tape().record([x, y]() {
    const Tensor& dY = y.grad();
    if (!dY.defined()) return;
    bool accumulate;
    Tensor& dX = grad_for(x, accumulate);
    if (accumulate) kernels::add_inplace(dX.f32(), dY.f32(), dY.numel());
    else dX.copy_from(dY);
  });
  return y;
}

Var straight_through_masked(const Var& x, const Tensor& mask,
                            const std::function<void(const Tensor& x, Tensor& y)>& forward) {
  const Tensor& X = x.value();
  GANNET_CHECK(mask.dtype() == DType::f32 && mask.shape() == X.shape(), "straight_through_masked: mask ",
               mask.describe(), " for ", X.describe());
  const bool rg = grad_enabled() && x.requires_grad();
  Var y(Tensor::empty(X.shape()), rg);
  forward(X, y.value());
  if (!rg) return y;
  tape().record([x, y, mask]() {
    const Tensor& dY = y.grad();
    if (!dY.defined()) return;
    bool accumulate;
    Tensor& dX = grad_for(x, accumulate);
    const float* g = dY.f32();
    const float* m = mask.f32();
    float* d = dX.f32();
    const int64_t n = dY.numel();
    if (accumulate) {
      for (int64_t i = 0; i < n; ++i) d[i] += g[i] * m[i];
    } else {
      for (int64_t i = 0; i < n; ++i) d[i] = g[i] * m[i];
    }
  });
  return y;
}

}  // namespace gannet::autograd
