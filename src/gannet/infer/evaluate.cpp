#include "gannet/infer/evaluate.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "gannet/core/error.h"
#include "gannet/data/window_sampler.h"
#include "gannet/kernels/cross_entropy.h"

namespace gannet::infer {

TextLoss evaluate_text(Engine& engine, const data::TokenFile& file, int64_t T, int64_t max_windows,
                       const std::function<void(int64_t, int64_t)>& progress) {
  GANNET_CHECK(T >= 1 && T <= engine.max_context(), "evaluate: window of ", T, " tokens does not fit the engine's ",
               "context of ", engine.max_context());
  GANNET_CHECK(file.vocab_size() <= engine.vocab_size(), file.path(), " has vocabulary ", file.vocab_size(),
               ", larger than the model's ", engine.vocab_size());
  int64_t windows = data::eval_window_count(file, T);
  GANNET_CHECK(windows > 0, "evaluate: ", file.path(), " holds ", file.size(), " tokens, fewer than one window of ",
               T + 1);
  if (max_windows > 0) windows = std::min(windows, max_windows);
  const int64_t V = engine.vocab_size();
  Tensor tokens = Tensor::empty({1, T}, DType::i32), targets = Tensor::empty({1, T}, DType::i32);
  std::vector<float> logits(T * V);
  double sum = 0;
  int64_t counted = 0;
  for (int64_t w = 0; w < windows; ++w) {
    data::eval_windows(file, T, w, tokens, targets);
    engine.reset(0);
    engine.forward_all({0, std::span<const int32_t>(tokens.data<int32_t>(), T)}, logits.data());
    const int32_t* y = targets.data<int32_t>();
    const int64_t rows = std::count_if(y, y + T, [](int32_t v) { return v != kernels::kIgnoreIndex; });
    sum += (double)kernels::cross_entropy_forward(logits.data(), y, nullptr, T, V) * (double)rows;
    counted += rows;
    if (progress) progress(w + 1, windows);
  }
  engine.reset(0);
  TextLoss r;
  r.tokens = counted;
  r.loss = sum / (double)counted;
  r.perplexity = std::exp(r.loss);
  return r;
}

}  // namespace gannet::infer
