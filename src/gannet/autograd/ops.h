// Differentiable coarse ops. Each runs its forward kernel now and, when an input needs a
// gradient and grad mode is on, records its backward kernel on the tape.
#pragma once
#include <cstdint>

#include "gannet/autograd/variable.h"

namespace gannet::autograd {

// y = x W^T + b.  x [N, in], W [out, in], b [out] or undefined  ->  y [N, out]
Var linear(const Var& x, const Var& w, const Var& b);
// Row-wise LayerNorm over the last dimension.  x [N, C], gamma/beta [C]
Var layernorm(const Var& x, const Var& gamma, const Var& beta, float eps);
// tanh-approximated GELU, element-wise.
Var gelu(const Var& x);
// a + b, same shapes (also scalar [1] losses: loss = add(a, b)).
Var add(const Var& a, const Var& b);
// c * x, element-wise (weighting a loss: scale(loss, 0.5f)).
Var scale(const Var& x, float c);
// x [N, C] + b [C] on every row (a row-parallel Linear adds its bias after the all-reduce).
Var add_bias(const Var& x, const Var& b);
// Multi-head attention on the fused QKV activation.  qkv [B*T, 3C]  ->  [B*T, C].
// key_mask: optional [B, T] u8 tensor (1 = real token), for the bidirectional encoder.
Var attention(const Var& qkv, int64_t B, int64_t T, int64_t n_head, bool causal,
              const Tensor& key_mask = Tensor());
// wte[tokens] + wpe[0..T).  tokens [B, T] i32; wpe may be undefined  ->  [B*T, C]
Var embedding(const Tensor& tokens, const Var& wte, const Var& wpe);
// Mean cross-entropy of logits [N, V] against targets [N] (i32; -1 = ignore). The gradient is
// computed during the forward pass into the logits' own buffer, so the logits' values are gone
// afterwards: this must be the last use of `logits`.
Var cross_entropy(const Var& logits, const Tensor& targets);
// Mean over the rows of each sequence where mask is 1.  x [B*T, C], mask [B, T] u8  ->  [B, C]
Var masked_mean_pool(const Var& x, int64_t B, int64_t T, const Tensor& mask);

}  // namespace gannet::autograd
