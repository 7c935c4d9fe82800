#include "gannet/models/encoder.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "gannet/autograd/ops.h"
#include "gannet/autograd/token_ops.h"
#include "gannet/core/limits.h"

namespace gannet::models {

namespace {
Tensor i32_tensor(const std::vector<int32_t>& values) {
  Tensor t = Tensor::empty({(int64_t)values.size()}, DType::i32);
  std::copy(values.begin(), values.end(), t.data<int32_t>());
  return t;
}
}  // namespace

void EncoderConfig::validate() const {
  GANNET_CHECK(vocab_size > 0 && n_ctx > 0 && n_layer > 0 && n_head > 0 && n_embd > 0,
               "encoder config: vocab_size, n_ctx, n_layer, n_head and n_embd must be positive");
  auto at_most = [](const char* name, int64_t v, int64_t limit) {
    GANNET_CHECK(v <= limit, "encoder config: ", name, " ", v, " is larger than the limit ", limit);
  };
  at_most("vocab_size", vocab_size, kMaxVocabSize);
  at_most("n_ctx", n_ctx, kMaxContext);
  at_most("n_layer", n_layer, kMaxLayers);
  at_most("n_embd", n_embd, kMaxEmbedding);
  at_most("num_classes", num_classes, kMaxVocabSize);
  GANNET_CHECK(std::isfinite(layernorm_eps) && layernorm_eps > 0.f, "encoder config: layernorm_eps must be positive");
  GANNET_CHECK(n_embd % n_head == 0, "encoder config: n_embd ", n_embd, " is not divisible by n_head ", n_head);
  GANNET_CHECK(num_classes == 0 || num_classes >= 2, "encoder config: num_classes ", num_classes,
               " must be 0 (no classification head) or at least 2");
  GANNET_CHECK(mlm_head || num_classes > 0,
               "encoder config: no head (num_classes is 0 and mlm_head is false); an encoder needs one");
}

Encoder::Encoder(const EncoderConfig& config) : config_(config) {
  config_.validate();
  trunk_ = nn::Transformer({config_.vocab_size, config_.n_ctx, config_.n_layer, config_.n_head, config_.n_embd,
                            config_.layernorm_eps, {}},
                           params_);
  trunk_params_ = params_.size();
  if (config_.mlm_head) {
    mlm_ = {nn::Linear(config_.n_embd, config_.n_embd), nn::LayerNorm(config_.n_embd, config_.layernorm_eps),
            nn::make_param({config_.vocab_size})};
    mlm_.dense.collect("mlm.dense", params_);
    mlm_.ln.collect("mlm.ln", params_);
    params_.push_back({"mlm.bias", mlm_.bias, false});
  }
  if (config_.num_classes > 0) {
    classifier_ = nn::Linear(config_.n_embd, config_.num_classes);
    classifier_.collect("classifier", params_);
  }
}

void Encoder::init(uint64_t seed) {
  Rng rng(seed);
  trunk_.init(rng);  // first, so the trunk starts the same whatever the heads
  if (config_.mlm_head) {
    mlm_.dense.init(rng, 0.02f);
    nn::init_constant(mlm_.ln.weight, 1.f);
    nn::init_constant(mlm_.ln.bias, 0.f);
    nn::init_constant(mlm_.bias, 0.f);
  }
  if (config_.num_classes > 0) classifier_.init(rng, 0.02f);
}

nn::ParameterList Encoder::trunk_parameters() const {
  return nn::ParameterList(params_.begin(), params_.begin() + (std::ptrdiff_t)trunk_params_);
}

void Encoder::require_head(bool present, const char* what) const {
  GANNET_CHECK(present, "encoder: this model has no ", what, " head");
}

nn::Var Encoder::hidden(const Tensor& tokens, const Tensor& mask) const {
  return trunk_.forward(tokens, /*causal=*/false, mask);
}

nn::Var Encoder::logits(const Tensor& tokens, const Tensor& mask) const {
  require_head(config_.num_classes > 0, "classification");
  return classifier_.forward(autograd::masked_mean_pool(hidden(tokens, mask), tokens.dim(0), tokens.dim(1), mask));
}

nn::Var Encoder::loss(const Tensor& tokens, const Tensor& mask, const Tensor& labels) const {
  GANNET_CHECK(labels.numel() == tokens.dim(0), "encoder: ", labels.numel(), " labels for ", tokens.dim(0),
               " sequences");
  return autograd::cross_entropy(logits(tokens, mask), labels.view({labels.numel()}));
}

nn::Var Encoder::mlm_head_forward(const nn::Var& rows) const {
  nn::Var h = mlm_.ln.forward(autograd::gelu(mlm_.dense.forward(rows)));
  return autograd::linear(h, trunk_.token_embedding(), mlm_.bias);  // the decoder is wte, tied
}

nn::Var Encoder::mlm_logits(const Tensor& tokens, const Tensor& mask, const Tensor& positions) const {
  require_head(config_.mlm_head, "MLM");
  return mlm_head_forward(autograd::gather_rows(hidden(tokens, mask), positions));
}

nn::Var Encoder::mlm_loss(const Tensor& tokens, const Tensor& mask, const Tensor& targets) const {
  require_head(config_.mlm_head, "MLM");
  GANNET_CHECK(targets.dtype() == DType::i32 && targets.shape() == tokens.shape(), "encoder: MLM targets ",
               targets.describe(), " do not match tokens ", tokens.describe());
  GANNET_CHECK(!mask.defined() || (mask.dtype() == DType::u8 && mask.shape() == tokens.shape()), "encoder: mask ",
               mask.describe(), " does not match tokens ", tokens.describe());
  const int32_t* tg = targets.data<int32_t>();
  const uint8_t* real = mask.defined() ? mask.data<uint8_t>() : nullptr;
  std::vector<int32_t> rows, picked;
  for (int64_t i = 0; i < targets.numel(); ++i) {
    if (tg[i] == -1) continue;
    GANNET_CHECK(tg[i] >= 0 && tg[i] < config_.vocab_size, "encoder: MLM target ", tg[i], " at flat position ", i,
                 " is outside [0, ", config_.vocab_size, ") and is not the ignore index -1");
    GANNET_CHECK(!real || real[i], "encoder: MLM target at flat position ", i, " is on padding");
    rows.push_back((int32_t)i);
    picked.push_back(tg[i]);
  }
  // No target: one row with an ignored target keeps the graph whole (loss 0, zero gradients).
  if (rows.empty()) {
    rows.push_back(0);
    picked.push_back(-1);
  }
  return autograd::cross_entropy(mlm_logits(tokens, mask, i32_tensor(rows)), i32_tensor(picked));
}

}  // namespace gannet::models
