#include "gannet/data/mlm_masking.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

namespace gannet::data {

namespace {
// Of the chosen positions: [MASK] for draws 0..7 of 10, a random id for 8, unchanged for 9.
constexpr uint64_t kDrawOutcomes = 10, kMaskDraws = 8, kRandomDraw = 8;

void check_inputs(const Tensor& tokens, const Tensor& valid, int64_t vocab_size) {
  GANNET_CHECK(tokens.dtype() == DType::i32 && tokens.ndim() == 2, "MLM masking: tokens must be i32[B, T], got ",
               tokens.describe());
  if (valid.defined())
    GANNET_CHECK(valid.dtype() == DType::u8 && valid.shape() == tokens.shape(), "MLM masking: validity mask ",
                 valid.describe(), " does not match tokens ", tokens.describe());
  const int32_t* tok = tokens.data<int32_t>();
  for (int64_t i = 0; i < tokens.numel(); ++i)
    GANNET_CHECK(tok[i] >= 0 && tok[i] < vocab_size, "MLM masking: token id ", tok[i], " at flat position ", i,
                 " is outside [0, ", vocab_size, ")");
}
}  // namespace

void MlmMaskingOptions::validate() const {
  GANNET_CHECK(mask_prob > 0.f && mask_prob <= 1.f, "MLM masking: mask_prob ", mask_prob, " is not in (0, 1]");
  GANNET_CHECK(num_special >= 1, "MLM masking: num_special ", num_special, " must be at least 1 (the [MASK] id)");
  GANNET_CHECK(vocab_size > num_special, "MLM masking: vocab_size ", vocab_size,
               " leaves no ordinary id after the ", num_special, " special ids");
  GANNET_CHECK(mask_id >= 0 && mask_id < num_special, "MLM masking: mask_id ", mask_id,
               " must be one of the special ids [0, ", num_special, ")");
}

int64_t mlm_chosen_count(int64_t eligible, float mask_prob) {
  if (eligible <= 0) return 0;
  const auto k = (int64_t)std::floor((double)mask_prob * (double)eligible + 0.5);
  return std::clamp<int64_t>(k, 1, eligible);
}

MlmBatch mask_tokens(const Tensor& tokens, const Tensor& valid, const MlmMaskingOptions& options, Rng& rng) {
  options.validate();
  check_inputs(tokens, valid, options.vocab_size);
  const int64_t B = tokens.dim(0), T = tokens.dim(1);
  MlmBatch out{tokens.clone(), Tensor::empty(tokens.shape(), DType::i32), 0};
  const int32_t* src = tokens.data<int32_t>();
  const uint8_t* ok = valid.defined() ? valid.data<uint8_t>() : nullptr;
  int32_t* in = out.inputs.data<int32_t>();
  int32_t* tg = out.targets.data<int32_t>();
  std::fill(tg, tg + B * T, -1);
  const auto ordinary = (uint64_t)(options.vocab_size - options.num_special);
  std::vector<int64_t> eligible;
  eligible.reserve((size_t)T);
  for (int64_t b = 0; b < B; ++b) {
    eligible.clear();
    for (int64_t t = 0; t < T; ++t) {
      const int64_t i = b * T + t;
      if ((!ok || ok[i]) && src[i] >= options.num_special) eligible.push_back(i);
    }
    const auto n = (int64_t)eligible.size(), k = mlm_chosen_count(n, options.mask_prob);
    for (int64_t c = 0; c < k; ++c) {  // partial Fisher-Yates: eligible[0, k) is a uniform k-subset
      std::swap(eligible[(size_t)c], eligible[(size_t)(c + (int64_t)rng.below((uint64_t)(n - c)))]);
      const int64_t i = eligible[(size_t)c];
      tg[i] = src[i];
      const uint64_t draw = rng.below(kDrawOutcomes);
      if (draw < kMaskDraws) in[i] = options.mask_id;
      else if (draw == kRandomDraw) in[i] = (int32_t)(options.num_special + (int64_t)rng.below(ordinary));
    }
    out.chosen += k;
  }
  return out;
}

}  // namespace gannet::data
