// Differentiable row gather and scatter, for token dropping (random-LTD): a layer runs on the kept
// rows only, and its output is written back over the input at those rows while the dropped rows
// pass through unchanged.
#pragma once
#include "gannet/autograd/variable.h"

namespace gannet::autograd {

// y[i] = x[idx[i]].  x [N, C], idx i32 [M] (distinct rows)  ->  [M, C]
Var gather_rows(const Var& x, const Tensor& idx);
// y = base with y[idx[i]] = src[i].  base [N, C], src [M, C], idx i32 [M] (distinct)  ->  [N, C]
Var scatter_rows(const Var& base, const Var& src, const Tensor& idx);

}  // namespace gannet::autograd
