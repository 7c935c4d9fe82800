#include "gannet/train/evaluate.h"

#include <cmath>

#include "gannet/autograd/tape.h"
#include "gannet/data/window_sampler.h"

namespace gannet::train {

EvalResult evaluate(const models::Gpt& model, const data::TokenFile& file, int64_t seq_len, int64_t batch,
                    int64_t max_batches) {
  return evaluate([&](const Tensor& tokens, const Tensor& targets) { return model.loss(tokens, targets).value().f32()[0]; },
                  file, seq_len, batch, max_batches);
}

EvalResult evaluate(const WindowLoss& loss, const data::TokenFile& file, int64_t seq_len, int64_t batch,
                    int64_t max_batches) {
  autograd::NoGrad no_grad;
  const int64_t windows = data::eval_window_count(file, seq_len);
  GANNET_CHECK(windows > 0, "evaluate: the token file holds ", file.size(), " tokens, fewer than one window of ",
               seq_len + 1);
  int64_t n_batches = (windows + batch - 1) / batch;
  if (max_batches > 0 && n_batches > max_batches) n_batches = max_batches;
  Tensor tokens = Tensor::empty({batch, seq_len}, DType::i32);
  Tensor targets = Tensor::empty({batch, seq_len}, DType::i32);
  double sum = 0;
  int64_t counted = 0;
  for (int64_t i = 0; i < n_batches; ++i) {
    int64_t rows = data::eval_windows(file, seq_len, i * batch, tokens, targets);
    if (rows == 0) break;
    // Only the real windows: padding rows would still be routed by MoE layers and take capacity.
    const bool full = rows == batch;
    const float mean = loss(full ? tokens : tokens.slice(0, rows), full ? targets : targets.slice(0, rows));
    sum += (double)mean * (double)(rows * seq_len);
    counted += rows * seq_len;
  }
  EvalResult r;
  r.tokens = counted;
  r.loss = sum / (double)counted;
  r.perplexity = std::exp(r.loss);
  return r;
}

}  // namespace gannet::train
