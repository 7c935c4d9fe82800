#include "gannet/autograd/straight_through.h"

#include "gannet/autograd/tape.h"
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

}  // namespace gannet::autograd
