// Random layerwise token dropping (random-LTD, arXiv 2211.11586): in the chosen layers each
// sequence keeps a random subset of `keep` of its T tokens, in their original order, so a causal
// mask over the kept tokens is still causal (and an encoder's key mask is gathered alike); the
// layer runs on the kept tokens only and the dropped ones bypass it unchanged. Only while
// training: the trunk ignores the plan when grad mode is off (evaluation, sampling), and the
// inference engine never sees it.
#pragma once
#include <cstdint>
#include <vector>

#include "gannet/core/rng.h"
#include "gannet/nn/block.h"

namespace gannet::nn {

struct RandomLtdPlan {
  std::vector<bool> layers;  // [n_layer]: drop tokens in this layer
  int64_t keep = 0;          // tokens kept per sequence (>= T: no dropping)
  uint64_t seed = 0;         // the draws of one forward pass (layers draw in order)
};

// For each of B sequences, `keep` distinct positions of T in increasing order, as flat row
// indices b*T + t: i32 [B*keep].
Tensor random_ltd_indices(int64_t B, int64_t T, int64_t keep, Rng& rng);

// The block applied to the rows `idx` (from random_ltd_indices) of x [B*T, C]; other rows pass
// through. key_mask optional u8 [B, T].
Var random_ltd_block(const Block& block, const Var& x, int64_t B, int64_t T, int64_t keep, const Tensor& idx,
                     bool causal, const Tensor& key_mask,
                     MoePass* moe_pass = nullptr);

}  // namespace gannet::nn
