#include "gannet/models/vlmoe_classifier.h"

#include "gannet/autograd/ops.h"
#include "gannet/core/error.h"

namespace gannet::models {

VlMoeClassifier::VlMoeClassifier(const VlMoeConfig& config, int64_t n_classes)
    : trunk_(config), n_classes_(n_classes) {
  GANNET_CHECK(n_classes >= 1, "vlmoe classifier: n_classes must be at least 1, got ", n_classes);
  head_ = nn::Linear(config.n_embd, n_classes);
  params_ = trunk_.parameters();
  head_.collect("cls.head", params_);
}

void VlMoeClassifier::init(uint64_t seed) {
  trunk_.init(seed);
  Rng rng(seed ^ 0x6A09E667F3BCC909ull);  // a stream of its own: the trunk's init is VlMoe's alone
  head_.init(rng, 0.02f);
}

VlMoeClassifierOutput VlMoeClassifier::forward(const Tensor& images, uint64_t moe_seed) const {
  VlMoeOutput out = trunk_.forward({images, {}, {}}, moe_seed);
  return {head_.forward(out.image_pooled), std::move(out.image_moe)};
}

nn::Var VlMoeClassifier::loss(const VlMoeClassifierOutput& out, const Tensor& labels, double* cross_entropy) {
  GANNET_CHECK(labels.dtype() == DType::i32 && labels.ndim() == 1 && labels.dim(0) == out.logits.value().dim(0),
               "vlmoe classifier: labels ", labels.describe(), " for logits ", out.logits.value().describe());
  nn::Var ce = autograd::cross_entropy(out.logits, labels);
  if (cross_entropy) *cross_entropy = ce.value().f32()[0];
  return out.moe.aux_loss.defined() ? autograd::add(ce, out.moe.aux_loss) : ce;
}

}  // namespace gannet::models
