// Image classification on a VL-MoE (issue 21): the image tower of models/vlmoe.h (image-only
// mode: the image tokens through the shared attention and the V-MoE / dense FFN layers) and a
// classification head on the image [CLS] vector: image_pooled [B, C] -> Linear C -> n_classes
// (cls.head.{weight,bias}). The parameters are the VlMoe's (text tower and ITC projections
// included, so a pre-trained VL-MoE checkpoint loads into it unchanged; they get no gradient from
// an image-only loss) followed by the head's. The loss is the mean cross-entropy plus the image
// pass's MoE auxiliary losses (balance and z-losses, coefficient-weighted), as pre-training adds them.
#pragma once
#include "gannet/models/vlmoe.h"

namespace gannet::models {

struct VlMoeClassifierOutput {
  nn::Var logits;      // [B, n_classes]
  nn::MoePass moe;     // the image pass's MoE layers (aux_loss undefined without MoE layers)
};

class VlMoeClassifier {
 public:
  VlMoeClassifier(const VlMoeConfig& config, int64_t n_classes);
  const VlMoeConfig& config() const { return trunk_.config(); }
  int64_t n_classes() const { return n_classes_; }
  // The trunk from `seed` (VlMoe::init) and the head from a stream of its own: N(0, 0.02), bias 0.
  void init(uint64_t seed);
  // MoE layers as VlMoe::forward runs them (training when grad mode is on).
  VlMoeClassifierOutput forward(const Tensor& images, uint64_t moe_seed = 0) const;
  // Mean cross-entropy of forward's logits against labels i32 [B], plus the pass's MoE auxiliary
  // losses; `cross_entropy` (optional) receives the cross-entropy alone. Consumes out.logits (the
  // cross-entropy writes its gradient into their buffer).
  static nn::Var loss(const VlMoeClassifierOutput& out, const Tensor& labels, double* cross_entropy = nullptr);
  VlMoe& trunk() { return trunk_; }
  const VlMoe& trunk() const { return trunk_; }
  const nn::Linear& head() const { return head_; }
  const nn::ParameterList& parameters() const { return params_; }

 private:
  VlMoe trunk_;
  int64_t n_classes_;
  nn::Linear head_;
  nn::ParameterList params_;
};

}  // namespace gannet::models
