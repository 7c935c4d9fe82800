// Differentiable ops of graph neural networks (GraphSAGE, models/graphsage.h) on sampled blocks:
// the mean over each destination's neighbours, the destinations' own rows, and ReLU.
#pragma once
#include <cstdint>

#include "gannet/autograd/variable.h"
#include "gannet/core/rng.h"

namespace gannet::autograd {

// y[d] = mean of x[src[j]] over j in [offsets[d], offsets[d + 1]) (a zero row when d has no
// neighbours).  x [num_src, C]  ->  [num_dst, C]. The lists are checked, and read only during
// this call (the backward keeps a transposed copy).
Var neighbour_mean(const Var& x, const int64_t* offsets, const int32_t* src, int64_t num_dst);
// The first n rows of x (a sampled block's destinations are the first of its sources).
Var leading_rows(const Var& x, int64_t n);
// max(x, 0), element-wise.
Var relu(const Var& x);
// Inverted dropout: each element kept with probability 1 - p and scaled by 1 / (1 - p), else 0.
// One number is drawn from `rng` per call; the mask follows from it and the element's position,
// whatever the thread count (p is resolved to 1/65536).  x [N, C]
Var dropout(const Var& x, float p, Rng& rng);
// dropout(relu(x), p, rng) in one pass, bitwise (the same masks); nothing but the output is kept
// for the backward pass, which passes the gradient where the output is non-zero.  x [N, C]
Var relu_dropout(const Var& x, float p, Rng& rng);

}  // namespace gannet::autograd
