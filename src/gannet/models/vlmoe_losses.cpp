#include "gannet/models/vlmoe_losses.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>

#include "gannet/autograd/contrastive_ops.h"
#include "gannet/autograd/ops.h"
#include "gannet/core/error.h"

namespace gannet::models {

autograd::Var image_text_contrastive(const autograd::Var& image_embed, const autograd::Var& text_embed,
                                     const autograd::Var& logit_scale) {
  GANNET_CHECK(image_embed.value().ndim() == 2 && image_embed.shape() == text_embed.shape(),
               "image_text_contrastive: image embeddings ", image_embed.value().describe(),
               " and text embeddings ", text_embed.value().describe(), " must both be [B, D]");
  const int64_t B = image_embed.shape()[0];
  Tensor diagonal = Tensor::empty({B}, DType::i32);
  for (int64_t i = 0; i < B; ++i) diagonal.data<int32_t>()[i] = (int32_t)i;
  autograd::Var img = autograd::l2_normalize_rows(image_embed);
  autograd::Var txt = autograd::l2_normalize_rows(text_embed);
  // Two products rather than one and its transpose: cross_entropy consumes its logits' buffer.
  autograd::Var image_to_text = autograd::scale_by_exp(autograd::linear(img, txt, {}), logit_scale, kMaxLogitScale);
  autograd::Var text_to_image = autograd::scale_by_exp(autograd::linear(txt, img, {}), logit_scale, kMaxLogitScale);
  autograd::Var sum = autograd::add(autograd::cross_entropy(image_to_text, diagonal),
                                    autograd::cross_entropy(text_to_image, diagonal));
  return autograd::scale(sum, 0.5f);
}

namespace {

// An index drawn with probability softmax(score) over the allowed candidates; -1 when none is.
int64_t draw_softmax(int64_t n, const std::function<float(int64_t)>& score, const std::function<bool(int64_t)>& allowed,
                     Rng& rng) {
  float top = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < n; ++j)
    if (allowed(j)) top = std::max(top, score(j));
  if (top == -std::numeric_limits<float>::infinity()) return -1;
  std::vector<double> weight((size_t)n, 0.0);
  double total = 0;
  for (int64_t j = 0; j < n; ++j)
    if (allowed(j)) total += weight[(size_t)j] = std::exp((double)score(j) - top);
  double u = rng.uniform_double() * total;
  int64_t last = -1;
  for (int64_t j = 0; j < n; ++j) {
    if (!allowed(j)) continue;
    last = j;
    if ((u -= weight[(size_t)j]) < 0) return j;
  }
  return last;  // rounding at the very end of the range
}

// Rows `rows` of a batch tensor (any dtype, first dimension the batch).
Tensor take_rows(const Tensor& t, const std::vector<int64_t>& rows) {
  Shape shape = t.shape();
  const int64_t row_bytes = (int64_t)t.nbytes() / shape[0];
  shape[0] = (int64_t)rows.size();
  Tensor out = Tensor::empty(shape, t.dtype());
  for (size_t i = 0; i < rows.size(); ++i)
    std::memcpy(static_cast<char*>(out.raw()) + (int64_t)i * row_bytes,
                static_cast<const char*>(t.raw()) + rows[i] * row_bytes, (size_t)row_bytes);
  return out;
}

}  // namespace

ItmNegatives sample_itm_negatives(const Tensor& similarity, const std::vector<std::string>& names, Rng& rng) {
  const int64_t B = (int64_t)names.size();
  GANNET_CHECK(similarity.dtype() == DType::f32 && similarity.ndim() == 2 && similarity.dim(0) == B &&
                   similarity.dim(1) == B,
               "itm negatives: similarity is ", similarity.describe(), " for ", B, " pairs");
  const float* s = similarity.f32();
  ItmNegatives n;
  for (int64_t i = 0; i < B; ++i) {
    const auto other_name = [&](int64_t j) { return names[(size_t)j] != names[(size_t)i]; };
    n.text_for_image.push_back(draw_softmax(B, [&](int64_t j) { return s[i * B + j]; }, other_name, rng));
    n.image_for_text.push_back(draw_softmax(B, [&](int64_t j) { return s[j * B + i]; }, other_name, rng));
  }
  return n;
}

ItmPairs itm_pairs(const ItmNegatives& negatives) {
  const int64_t B = (int64_t)negatives.text_for_image.size();
  ItmPairs p;
  std::vector<int32_t> labels;
  auto add = [&](int64_t image, int64_t text, int32_t label) {
    if (image < 0 || text < 0) return;
    p.image.push_back(image);
    p.text.push_back(text);
    labels.push_back(label);
  };
  for (int64_t i = 0; i < B; ++i) add(i, i, 1);
  for (int64_t i = 0; i < B; ++i) add(i, negatives.text_for_image[(size_t)i], 0);
  for (int64_t j = 0; j < B; ++j) add(negatives.image_for_text[(size_t)j], j, 0);
  p.labels = Tensor::empty({(int64_t)labels.size()}, DType::i32);
  std::copy(labels.begin(), labels.end(), p.labels.data<int32_t>());
  return p;
}

ItmLoss image_text_matching(const VlMoe& model, const Tensor& images, const Tensor& text, const Tensor& text_mask,
                            const ItmPairs& pairs, uint64_t moe_seed) {
  GANNET_CHECK(!pairs.image.empty() && pairs.image.size() == pairs.text.size() &&
                   pairs.labels.numel() == (int64_t)pairs.image.size(),
               "itm: ", pairs.image.size(), " images, ", pairs.text.size(), " texts and ", pairs.labels.numel(),
               " labels");
  ItmLoss r;
  r.fused = model.forward({take_rows(images, pairs.image), take_rows(text, pairs.text), take_rows(text_mask, pairs.text)},
                          moe_seed);
  r.loss = autograd::cross_entropy(model.itm_logits(r.fused.image_pooled), pairs.labels);
  return r;
}

}  // namespace gannet::models
