// What the packed-encoder harnesses share: whether a model read from a fuzzed file is small enough
// to run (bounded work per input), and one window of it through its engine, so that anything the
// file validation misses reaches the kernels in the harness, not a user's run.
#pragma once
#include <algorithm>
#include <cstdint>

#include "gannet/infer/encoder_engine.h"

namespace gannet::fuzz {

inline bool small_encoder(const models::EncoderConfig& c) { return c.n_embd * c.n_layer <= 4096 && c.vocab_size <= 4096; }

// Up to 4 tokens (ids 0, 1, 2, ...) through `engine`; the logits are read so that nothing is skipped.
inline void run_one_window(infer::EncoderEngine& engine, const models::EncoderConfig& c) {
  const int64_t T = std::min<int64_t>(c.n_ctx, 4);
  Tensor tokens = Tensor::empty({1, T}, DType::i32), mask = Tensor::empty({1, T}, DType::u8);
  for (int64_t t = 0; t < T; ++t) {
    tokens.data<int32_t>()[t] = (int32_t)(t % c.vocab_size);
    mask.data<uint8_t>()[t] = 1;
  }
  const Tensor logits = engine.logits(tokens, mask);
  volatile float sink = logits.f32()[0];
  (void)sink;
}

}  // namespace gannet::fuzz
