#include "gannet/data/window_sampler.h"

namespace gannet::data {

WindowSampler::WindowSampler(const TokenFile& file, int64_t seq_len, uint64_t seed)
    : file_(&file), seq_len_(seq_len), rng_(seed) {
  GANNET_CHECK(seq_len > 0, "sampler: sequence length must be positive");
  GANNET_CHECK(file.size() > seq_len, "sampler: token file holds ", file.size(), " tokens, fewer than one window of ",
               seq_len + 1);
}

// Inputs are the window's first T tokens, targets the T tokens after them.
static void read_window(const TokenFile& file, int64_t start, int64_t T, int32_t* tokens, int32_t* targets) {
  file.read(start, T, tokens);
  file.read(start + 1, T, targets);
}

void WindowSampler::next(Tensor& tokens, Tensor& targets) {
  const int64_t B = tokens.dim(0), T = seq_len_;
  check_shape(tokens, {B, T}, "sampler tokens");
  check_shape(targets, {B, T}, "sampler targets");
  const uint64_t starts = (uint64_t)(file_->size() - T);  // window [s, s+T] must fit
  for (int64_t b = 0; b < B; ++b) {
    int64_t s = (int64_t)rng_.below(starts);
    read_window(*file_, s, T, tokens.data<int32_t>() + b * T, targets.data<int32_t>() + b * T);
  }
}

int64_t eval_window_count(const TokenFile& file, int64_t seq_len) {
  return file.size() > seq_len ? (file.size() - 1) / seq_len : 0;
}

int64_t eval_windows(const TokenFile& file, int64_t seq_len, int64_t first, Tensor& tokens, Tensor& targets) {
  const int64_t B = tokens.dim(0), T = seq_len, total = eval_window_count(file, seq_len);
  int64_t rows = 0;
  for (int64_t b = 0; b < B; ++b) {
    int32_t* tk = tokens.data<int32_t>() + b * T;
    int32_t* tg = targets.data<int32_t>() + b * T;
    if (first + b >= total) {
      for (int64_t t = 0; t < T; ++t) tk[t] = 0, tg[t] = -1;
      continue;
    }
    read_window(file, (first + b) * T, T, tk, tg);
    ++rows;
  }
  return rows;
}

}  // namespace gannet::data
