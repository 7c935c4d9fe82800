// Text generation with the training model's own forward pass over the whole context (simple and
// exact; the fast engine with a KV cache lives in infer/).
#pragma once
#include <functional>
#include <vector>

#include "gannet/models/gpt.h"

namespace gannet::train {

struct SampleOptions {
  int64_t max_tokens = 64;
  float temperature = 0.8f;  // 0: greedy
  int64_t top_k = 40;        // 0: off
  uint64_t seed = 1;
  int32_t stop_token = -1;   // stop after producing this id (e.g. end of document)
};

// Continues `prompt` (token ids); calls on_token for each new id; returns the new ids.
std::vector<int32_t> sample(const models::Gpt& model, const std::vector<int32_t>& prompt, const SampleOptions& opt,
                            const std::function<void(int32_t)>& on_token = nullptr);

}  // namespace gannet::train
