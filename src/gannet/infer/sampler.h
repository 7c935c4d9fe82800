// Picking the next token from a sequence's logits: greedy, or temperature sampling narrowed by
// top-k and top-p, with a CTRL-style repetition penalty. Each sequence owns its Sampler and its
// random stream, so a seed gives the same text whatever else is batched with it.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "gannet/core/rng.h"

namespace gannet::infer {

struct SamplingParams {
  float temperature = 1.0f;         // 0: greedy (argmax; ties go to the lowest id)
  int64_t top_k = 0;                // keep the k likeliest tokens; 0: off
  float top_p = 1.0f;               // keep the smallest set of likeliest tokens with mass >= p; 1: off
  float repetition_penalty = 1.0f;  // CTRL: logits of tokens already seen (prompt and output) are
                                    // divided by it when positive, multiplied when negative; 1: off
  uint64_t seed = 0;

  // Throws gannet::Error naming the bad field: temperature < 0 or not finite, top_k < 0,
  // top_p outside (0, 1], repetition_penalty <= 0 or not finite.
  void validate() const;
  bool greedy() const { return temperature == 0.0f; }
};

class Sampler {
 public:
  // `prompt` seeds the set of seen tokens for the repetition penalty. Validates params.
  Sampler(const SamplingParams& params, int64_t vocab_size, std::span<const int32_t> prompt = {});

  // Picks the next token from logits[vocab_size] (left unchanged) and records it as seen.
  int32_t sample(std::span<const float> logits);

  const SamplingParams& params() const { return params_; }

 private:
  // Moves the n likeliest of scratch_ (by logit, ties to the lower id) to the front of order_,
  // in no particular order; returns min(n, vocab).
  int64_t partition_top(int64_t n);
  // Reorders the candidates order_[0, n) so that the nucleus (the fewest likeliest whose weights
  // sum to >= target) comes first; returns its size.
  int64_t nucleus(int64_t n, double target);

  SamplingParams params_;
  int64_t vocab_;
  Rng rng_;
  std::vector<uint8_t> seen_;      // [vocab] 1 when the token appeared in prompt or output
  std::vector<int32_t> seen_ids_;  // the ids with seen_ set, for a penalty pass proportional to them
  std::vector<float> scratch_;     // [vocab] penalized logits
  std::vector<int32_t> order_;     // [vocab] candidate ids
  std::vector<float> weight_of_;   // [vocab] unnormalized probability, by id (candidates only)
};

}  // namespace gannet::infer
