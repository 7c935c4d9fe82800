#include "gannet/autograd/token_ops.h"

#include <cstring>

#include "gannet/autograd/tape.h"
#include "gannet/kernels/bias.h"
#include "gannet/kernels/token_gather.h"

namespace gannet::autograd {
namespace k = gannet::kernels;

namespace {
void check_args(const Tensor& x, const Tensor& idx, const char* op) {
  GANNET_CHECK(x.dtype() == DType::f32 && x.ndim() == 2, op, ": input must be a 2-D f32 tensor, got ", x.describe());
  GANNET_CHECK(idx.dtype() == DType::i32 && idx.ndim() == 1, op, ": indices must be i32[M], got ", idx.describe());
  k::check_row_indices(idx.data<int32_t>(), idx.numel(), x.dim(0));
}
}  // namespace

Var gather_rows(const Var& x, const Tensor& idx) {
  check_args(x.value(), idx, "gather_rows");
  const int64_t M = idx.numel(), C = x.value().dim(1);
  const bool rg = grad_enabled() && x.requires_grad();
  Var y(Tensor::empty({M, C}), rg);
  k::gather_rows(x.value().f32(), idx.data<int32_t>(), M, C, y.value().f32());
  if (!rg) return y;
  tape().record([x, y, idx, M, C]() {
    const Tensor& dY = y.grad();
    if (!dY.defined()) return;
    bool acc;
    Tensor& dX = grad_for(x, acc);
    if (!acc) dX.zero();
    k::scatter_add_rows(dY.f32(), idx.data<int32_t>(), M, C, dX.f32());
  });
  return y;
}

Var scatter_rows(const Var& base, const Var& src, const Tensor& idx) {
  check_args(base.value(), idx, "scatter_rows");
  const int64_t M = idx.numel(), C = base.value().dim(1);
  GANNET_CHECK(src.value().dtype() == DType::f32 && src.shape() == Shape({M, C}), "scatter_rows: source ",
               src.value().describe(), " does not match ", M, " rows of ", base.value().describe());
  const bool rg = grad_enabled() && (base.requires_grad() || src.requires_grad());
  Var y(base.value().clone(), rg);
  k::scatter_rows(src.value().f32(), idx.data<int32_t>(), M, C, y.value().f32());
  if (!rg) return y;
  tape().record([base, src, y, idx, M, C]() {
    const Tensor& dY = y.grad();
    if (!dY.defined()) return;
    const int32_t* ix = idx.data<int32_t>();
    if (src.requires_grad()) {
      bool acc;
      Tensor& dS = grad_for(src, acc);
      if (!acc) {
        k::gather_rows(dY.f32(), ix, M, C, dS.f32());
      } else {
        Tensor tmp = Tensor::empty({M, C});
        k::gather_rows(dY.f32(), ix, M, C, tmp.f32());
        k::add_inplace(dS.f32(), tmp.f32(), M * C);
      }
    }
    if (base.requires_grad()) {
      // dY is read by nobody after this op: zero the overwritten rows in place and hand it on.
      Tensor g = dY;
      k::zero_rows(g.f32(), ix, M, C);
      if (!base.grad().defined()) base.grad() = g;
      else k::add_inplace(base.grad().f32(), g.f32(), g.numel());
    }
  });
  return y;
}

}  // namespace gannet::autograd
