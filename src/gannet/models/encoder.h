// A BERT-style bidirectional encoder: token and position embeddings, pre-LN blocks with unmasked
// (padding-aware) attention and a final LayerNorm (the trunk), under either or both of two heads:
//  - masked-language-model (pre-training), BERT's: dense C->C, GELU (tanh form), LayerNorm, then
//    the decoder tied to the token embedding plus an output bias of vocab size;
//  - sequence classification (fine-tuning): mean pooling over the real tokens, then a linear layer.
// Parameter names: the trunk's come first and are GPT-2's (wte.weight, wpe.weight, h.<i>.*,
// ln_f.*; nn/transformer.h), whatever the heads; then mlm.dense.{weight,bias}, mlm.ln.{weight,bias},
// mlm.bias, then classifier.{weight,bias}. So a classifier fine-tuned from an MLM checkpoint loads
// the trunk by name and leaves the MLM head behind.
#pragma once
#include <vector>

#include "gannet/nn/transformer.h"

namespace gannet::models {

struct EncoderConfig {
  int64_t vocab_size = 8192;
  int64_t n_ctx = 256;
  int64_t n_layer = 4;
  int64_t n_head = 4;
  int64_t n_embd = 256;
  int64_t num_classes = 2;  // 0: no classification head; otherwise at least 2
  bool mlm_head = false;    // the masked-language-model head
  float layernorm_eps = 1e-5f;

  // Throws gannet::Error naming the bad field; an encoder needs at least one head.
  void validate() const;
  bool operator==(const EncoderConfig&) const = default;
};

class Encoder {
 public:
  explicit Encoder(const EncoderConfig& config);
  const EncoderConfig& config() const { return config_; }
  void init(uint64_t seed);
  // Final hidden states [B*T, n_embd] (after the last LayerNorm) for tokens [B, T] (i32) with mask
  // [B, T] (u8, 1 = real token).
  nn::Var hidden(const Tensor& tokens, const Tensor& mask) const;

  // Classification head. Class logits [B, num_classes].
  nn::Var logits(const Tensor& tokens, const Tensor& mask) const;
  // Mean cross-entropy against labels [B] (i32).
  nn::Var loss(const Tensor& tokens, const Tensor& mask, const Tensor& labels) const;

  // MLM head. Vocabulary logits [M, vocab_size] at the rows `positions` (i32 [M], distinct flat
  // indices b*T + t) of the hidden states: the head runs on those rows only.
  nn::Var mlm_logits(const Tensor& tokens, const Tensor& mask, const Tensor& positions) const;
  // Mean cross-entropy over the positions whose target (i32 [B, T]) is >= 0; -1 = ignore, and a
  // target is only allowed where mask is 1. Vocabulary logits are computed for those positions
  // only. No target at all: a loss of 0.
  nn::Var mlm_loss(const Tensor& tokens, const Tensor& mask, const Tensor& targets) const;

  const nn::ParameterList& parameters() const { return params_; }
  // The modules, for forwards that run them their own way (compress/xtc_forward.h).
  const nn::Transformer& trunk() const { return trunk_; }
  const nn::Linear& classifier() const { return classifier_; }
  // The trunk's parameters: the first entries of parameters(), the same whatever the heads.
  nn::ParameterList trunk_parameters() const;

 private:
  struct MlmHead {
    nn::Linear dense;
    nn::LayerNorm ln;
    nn::Var bias;  // [vocab_size], added to the tied decoder's logits
  };
  nn::Var mlm_head_forward(const nn::Var& rows) const;
  void require_head(bool present, const char* what) const;

  EncoderConfig config_;
  nn::ParameterList params_;
  size_t trunk_params_ = 0;
  nn::Transformer trunk_;
  MlmHead mlm_;
  nn::Linear classifier_;
};

}  // namespace gannet::models
