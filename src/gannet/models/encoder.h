// A BERT-style bidirectional encoder with a sequence-classification head: token and position
// embeddings, pre-LN blocks with unmasked (padding-aware) attention, final LayerNorm, mean pooling
// over the real tokens, and a linear classifier.
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
  int64_t num_classes = 2;
  float layernorm_eps = 1e-5f;

  void validate() const;
  bool operator==(const EncoderConfig&) const = default;
};

class Encoder {
 public:
  explicit Encoder(const EncoderConfig& config);
  const EncoderConfig& config() const { return config_; }
  void init(uint64_t seed);
  // Class logits [B, num_classes] for tokens [B, T] (i32) with mask [B, T] (u8, 1 = real token).
  nn::Var logits(const Tensor& tokens, const Tensor& mask) const;
  // Mean cross-entropy against labels [B] (i32).
  nn::Var loss(const Tensor& tokens, const Tensor& mask, const Tensor& labels) const;
  const nn::ParameterList& parameters() const { return params_; }

 private:
  EncoderConfig config_;
  nn::ParameterList params_;
  nn::Transformer trunk_;
  nn::Linear head_;
};

}  // namespace gannet::models
