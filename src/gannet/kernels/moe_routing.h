// Routing decisions of a sparse Mixture-of-Experts layer, kept as index lists (a counting sort of
// tokens by expert) rather than DeepSpeed's dense [tokens, experts, capacity] one-hot masks.
//
// A *slot* is one (token, expert) assignment that survived the capacity limit. Slots are grouped by
// expert, and within an expert ordered by token, so each expert's inputs form one contiguous block
// that a single GEMM processes. Each token also lists its own slots (a CSR index), which the
// combine step and the backward pass walk without write conflicts.
#pragma once
#include <cstdint>
#include <vector>

namespace gannet::kernels {

struct MoeRouting {
  int64_t tokens = 0, experts = 0, capacity = 0;
  // Expert e's slots are [offsets[e], offsets[e+1]); offsets has E + 1 entries.
  std::vector<int32_t> offsets;
  std::vector<int32_t> slot_token;  // [S]: the token each slot holds
  std::vector<int32_t> slot_rank;   // [S]: which of its token's choices the slot is (0: first); 0 for expert choice
  // Token n's slots are token_slots[token_offsets[n] .. token_offsets[n+1]), ascending.
  std::vector<int32_t> token_offsets;  // [N + 1]
  std::vector<int32_t> token_slots;    // [S]
  // How many choices named each expert before the capacity limit (top-k), or how many slots each
  // expert took (expert choice).
  std::vector<int64_t> demand;
  int64_t dropped = 0;  // choices the capacity limit removed (top-k); tokens no expert took (expert choice)

  int64_t slots() const { return offsets.empty() ? 0 : offsets.back(); }
  int32_t slot_expert(int64_t slot) const;  // by binary search in offsets
};

// DeepSpeed's capacity: ceil(k * N / E * factor), raised to min_capacity.
int64_t moe_capacity(int64_t tokens, int64_t experts, int64_t k, double factor, int64_t min_capacity);

// Top-k routing. scores [N, E] row-major: each token chooses the k experts with the highest
// scores (ties: the lower expert index), in order. Each expert then keeps at most `capacity` of the
// choices naming it (capacity < 0: all of them, "dropless"): first choices before second choices,
// and within a rank the tokens with the highest `priority` (random token selection; ties: the
// earlier token), or the earlier tokens first when priority is nullptr. Writes `out` entirely.
void route_top_k(const float* scores, int64_t N, int64_t E, int64_t k, int64_t capacity, const float* priority,
                 MoeRouting& out);

// Expert-choice routing (Zhou et al. 2022): each expert takes the `capacity` tokens with the
// highest scores in its column (ties: the earlier token); a token may be taken by several experts
// or by none. capacity is clamped to N.
void route_expert_choice(const float* scores, int64_t N, int64_t E, int64_t capacity, MoeRouting& out);

}  // namespace gannet::kernels
