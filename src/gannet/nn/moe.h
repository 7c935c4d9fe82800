// Sparse Mixture-of-Experts layer: replaces a block's MLP with E expert MLPs and a router. Options
// carry DeepSpeed's names (deepspeed.moe.layer.MoE) and meaning:
//   num_experts, k, capacity_factor, eval_capacity_factor, min_capacity, drop_tokens, use_rts,
//   noisy_gate_policy ("None", "Jitter", "RSample"), use_residual (PR-MoE), ep_size;
// plus the router z-loss (ST-MoE) and expert-choice routing, which DeepSpeed lacks.
//
// Forward: router logits in fp32 -> routing by counting sort (kernels/moe_routing.h) -> token rows
// gathered into one buffer grouped by expert -> the expert exchange (the identity on one process)
// -> one GEMM per expert and matrix -> exchange back -> rows combined with their gate weights.
// The experts' weights are one tensor per layer and matrix, [E, out, in].
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "gannet/kernels/moe_routing.h"
#include "gannet/nn/expert_exchange.h"
#include "gannet/nn/linear.h"

namespace gannet::nn {

struct MoeConfig {
  // Experts per MoE layer: one entry for all of them, or one per MoE layer (a pyramid, PR-MoE).
  // Empty: a dense model.
  std::vector<int64_t> num_experts;
  // Which blocks hold an MoE layer: an explicit list of block indices, or (when empty) every
  // expert_interval-th block counting from 1 (interval 2: blocks 1, 3, 5, ...), as Megatron-DeepSpeed.
  std::vector<int64_t> layers;
  int64_t expert_interval = 2;
  int64_t k = 1;
  double capacity_factor = 1.0;       // training
  double eval_capacity_factor = 1.0;  // evaluation (grad mode off)
  int64_t min_capacity = 4;
  bool drop_tokens = true;  // false: dropless (every expert takes every token that chose it)
  bool use_rts = true;      // random token selection decides who is dropped (else: earlier tokens win)
  std::string noisy_gate_policy = "None";  // "Jitter": x * U(1-0.01, 1+0.01) before the router;
                                           // "RSample": Gumbel noise on the logits for the choice
  bool use_residual = false;               // PR-MoE: dense MLP + MoE mixed by a learned 2-way softmax
  std::string router = "top_k";            // or "expert_choice"
  double moe_loss_coeff = 0.01;            // load-balancing loss coefficient
  double router_z_loss_coeff = 0.0;        // router z-loss coefficient (ST-MoE suggests 1e-3)
  int64_t ep_size = 1;                     // expert-parallel group size (processes)

  bool enabled() const { return !num_experts.empty(); }
  // The blocks with an MoE layer, ascending, for an n_layer model.
  std::vector<int64_t> moe_layers(int64_t n_layer) const;
  // Experts in block `block` (0: a dense block).
  int64_t experts_at(int64_t block, int64_t n_layer) const;
  // Throws naming the problem ("moe.k 3 is more than num_experts 2 of block 1").
  void validate(int64_t n_layer) const;
  bool operator==(const MoeConfig&) const = default;
};

// What one MoE layer saw in one forward pass.
struct MoeLayerStats {
  int64_t block = 0, tokens = 0, experts = 0, capacity = 0;
  double balance_loss = 0, z_loss = 0;
  double dropped_fraction = 0;  // choices (top-k) or tokens (expert choice) without a slot
  double entropy = 0;           // mean over tokens of the router distribution's entropy (nats)
  std::vector<int64_t> demand;  // choices naming each expert before the capacity limit
  std::vector<int64_t> kept;    // slots each expert processed
};

// One forward pass's MoE context: set by the caller, filled by the layers.
struct MoePass {
  bool training = false;  // capacity_factor and noise (else eval_capacity_factor, no noise)
  uint64_t seed = 0;      // random token selection and noise; each layer derives its own stream
  bool keep_routing = false;  // keep each layer's routing in `routings` (for analysis)
  Var aux_loss;               // sum of coefficient-weighted balance and z-losses (undefined: none)
  std::vector<MoeLayerStats> layers;
  std::vector<std::shared_ptr<const kernels::MoeRouting>> routings;
};


struct Moe {
  MoeConfig config;
  int64_t block = 0, n_embd = 0, experts = 0;
  Var gate;                         // router weight [E, C], no bias
  Var c_fc_w, c_fc_b;               // experts' first layer [E, 4C, C], [E, 4C]
  Var c_proj_w, c_proj_b;           // experts' second layer [E, C, 4C], [E, C]
  Linear coefficient;               // use_residual: [2, C] mixing logits (the dense MLP is the block's)
  const ExpertExchange* exchange = nullptr;  // nullptr: the single-process identity
  // Multiplies the auxiliary losses: 1/t when each of t ranks routes 1/t of the tokens, so that their
  // sum is the mean over all tokens.
  double aux_scale = 1.0;

  Moe() = default;
  Moe(const MoeConfig& config, int64_t block, int64_t n_embd, int64_t experts);
  // x [N, C] -> [N, C]. `residual` is the block's dense MLP output on x when use_residual.
  Var forward(const Var& x, const Var& residual, MoePass& pass) const;
  void collect(const std::string& prefix, ParameterList& out) const;
  void init(Rng& rng, float std, float proj_std);
};

}  // namespace gannet::nn
