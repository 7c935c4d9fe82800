#include "gannet/train/sampling.h"

#include <algorithm>
#include <cmath>

#include "gannet/autograd/tape.h"
#include "gannet/core/rng.h"

namespace gannet::train {

std::vector<int32_t> sample(const models::Gpt& model, const std::vector<int32_t>& prompt, const SampleOptions& opt,
                            const std::function<void(int32_t)>& on_token) {
  GANNET_CHECK(!prompt.empty(), "generate: the prompt is empty");
  autograd::NoGrad no_grad;
  Rng rng(opt.seed);
  std::vector<int32_t> ctx = prompt, out;
  const int64_t n_ctx = model.config().n_ctx, V = model.config().vocab_size;
  std::vector<float> probs(V);
  std::vector<int32_t> order(V);
  for (int64_t i = 0; i < opt.max_tokens; ++i) {
    int64_t start = (int64_t)ctx.size() > n_ctx ? (int64_t)ctx.size() - n_ctx : 0;
    int64_t T = (int64_t)ctx.size() - start;
    Tensor tokens = Tensor::empty({1, T}, DType::i32);
    std::copy(ctx.begin() + start, ctx.end(), tokens.data<int32_t>());
    Tensor logits = model.logits(tokens).value();
    const float* last = logits.f32() + (T - 1) * V;
    int32_t next;
    if (opt.temperature <= 0.f) {
      next = (int32_t)(std::max_element(last, last + V) - last);
    } else {
      int64_t k = opt.top_k > 0 && opt.top_k < V ? opt.top_k : V;
      for (int64_t j = 0; j < V; ++j) order[j] = (int32_t)j;
      std::partial_sort(order.begin(), order.begin() + k, order.end(),
                        [&](int32_t a, int32_t b) { return last[a] > last[b]; });
      float mx = last[order[0]];
      double sum = 0;
      for (int64_t j = 0; j < k; ++j) sum += probs[j] = std::exp((last[order[j]] - mx) / opt.temperature);
      double r = rng.uniform_double() * sum, acc = 0;
      next = order[k - 1];
      for (int64_t j = 0; j < k; ++j) {
        acc += probs[j];
        if (r < acc) {
          next = order[j];
          break;
        }
      }
    }
    ctx.push_back(next);
    out.push_back(next);
    if (on_token) on_token(next);
    if (next == opt.stop_token) break;
  }
  return out;
}

}  // namespace gannet::train
