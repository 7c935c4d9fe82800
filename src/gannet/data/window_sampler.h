// Training and evaluation batches cut from a token file: random windows of T+1 tokens for
// training (inputs and next-token targets), consecutive non-overlapping windows for evaluation.
#pragma once
#include "gannet/core/rng.h"
#include "gannet/core/tensor.h"
#include "gannet/data/token_file.h"

namespace gannet::data {

class WindowSampler {
 public:
  // seq_len = T; the file must hold at least T+1 tokens.
  WindowSampler(const TokenFile& file, int64_t seq_len, uint64_t seed);
  // Fills tokens and targets, both i32 [B, T], with B random windows.
  void next(Tensor& tokens, Tensor& targets);
  Rng& rng() { return rng_; }
  int64_t seq_len() const { return seq_len_; }

 private:
  const TokenFile* file_;
  int64_t seq_len_;
  Rng rng_;
};

// Number of consecutive windows of T+1 tokens (stride T) in the file.
int64_t eval_window_count(const TokenFile& file, int64_t seq_len);
// Fills tokens/targets [B, T] with windows first, first+1, ... (rows past the last window get
// targets of -1, which the loss ignores). Returns how many rows hold real windows.
int64_t eval_windows(const TokenFile& file, int64_t seq_len, int64_t first, Tensor& tokens, Tensor& targets);

}  // namespace gannet::data
