// Differentiable pieces of a sparse Mixture-of-Experts layer (nn/moe.h wires them):
//   moe_router     router logits -> routing (kernels::MoeRouting), gate per slot, balance loss, z-loss
//   moe_dispatch   token rows -> the expert buffer (one row per slot, grouped by expert)
//   expert_mlp     every expert's MLP on its block of the buffer: one GEMM per expert and matrix
//   moe_combine    buffer rows -> token rows, weighted by the gates
// plus the two small ops the layer's options need: a constant element-wise factor (jitter noise)
// and the 2-way softmax mix of PR-MoE's residual form.
#pragma once
#include <memory>

#include "gannet/autograd/variable.h"
#include "gannet/kernels/moe_routing.h"

namespace gannet::autograd {

struct RouterOptions {
  int64_t k = 1;               // experts per token (top-k)
  bool expert_choice = false;  // experts choose tokens instead (k is then unused)
  int64_t capacity = -1;       // slots per expert; < 0: no limit (top-k only)
  bool normalize_gates = false;  // divide each token's gates by their sum over its kept slots
  // Optional, not differentiated: added to the logits for choosing experts only (Gumbel noise,
  // noisy_gate_policy RSample) [N, E]; and per-token priorities for random token selection [N].
  Tensor selection_noise;
  Tensor priority;
};

struct RouterResult {
  std::shared_ptr<const kernels::MoeRouting> routing;
  Var gates;         // [S]: the weight of each slot in the combine step
  Var balance_loss;  // [1]: (E / k) * sum_e mean_n p[n,e] * (choices of e / N); 0 for expert choice
  Var z_loss;        // [1]: mean_n logsumexp(logits[n,:])^2
  Tensor probs;      // [N, E]: softmax of the logits (for statistics)
};

// logits [N, E] f32 (the router runs in fp32).
RouterResult moe_router(const Var& logits, const RouterOptions& options);

// [N, C] -> [S, C]: row s is x[slot_token[s]].
Var moe_dispatch(const Var& x, std::shared_ptr<const kernels::MoeRouting> routing);
// [S, C] -> [N, C]: row n is sum over n's slots of gates[s] * y[s]; zeros for a token with no slot.
Var moe_combine(const Var& y, const Var& gates, std::shared_ptr<const kernels::MoeRouting> routing);

// Each expert's two-layer GELU MLP on its slot rows. x [S, C]; w1 [E, H, C], b1 [E, H],
// w2 [E, C, H], b2 [E, C]; expert e owns rows [offsets[e], offsets[e+1]).
Var expert_mlp(const Var& x, const std::vector<int32_t>& offsets, const Var& w1, const Var& b1, const Var& w2,
               const Var& b2);

// x * m element-wise, m a constant of x's shape.
Var multiply_constant(const Var& x, const Tensor& m);
// a * softmax(logits)[:, 0] + b * softmax(logits)[:, 1], per row. a, b [N, C]; logits [N, 2].
Var softmax_mix2(const Var& a, const Var& b, const Var& logits);

}  // namespace gannet::autograd
