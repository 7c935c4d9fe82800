#include "gannet/models/vlmoe_losses.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>

#include "gannet/autograd/contrastive_ops.h"
#include "gannet/autograd/distill_ops.h"
#include "gannet/autograd/token_ops.h"
#include "gannet/data/glyph_text_tokenizer.h"
#include "gannet/autograd/ops.h"
#include "gannet/core/error.h"

namespace gannet::models {

namespace {

// ITC's two logit matrices exp(min(s, ln 100)) * normalised products, image->text and text->image.
// Two products rather than one and its transpose: cross_entropy consumes its logits' buffer.
struct ItcLogits {
  autograd::Var image_to_text, text_to_image;
};
ItcLogits itc_logits(const autograd::Var& image_embed, const autograd::Var& text_embed,
                     const autograd::Var& logit_scale) {
  GANNET_CHECK(image_embed.value().ndim() == 2 && image_embed.shape() == text_embed.shape(),
               "image_text_contrastive: image embeddings ", image_embed.value().describe(),
               " and text embeddings ", text_embed.value().describe(), " must both be [B, D]");
  autograd::Var img = autograd::l2_normalize_rows(image_embed);
  autograd::Var txt = autograd::l2_normalize_rows(text_embed);
  return {autograd::scale_by_exp(autograd::linear(img, txt, {}), logit_scale, kMaxLogitScale),
          autograd::scale_by_exp(autograd::linear(txt, img, {}), logit_scale, kMaxLogitScale)};
}

}  // namespace

autograd::Var image_text_contrastive(const autograd::Var& image_embed, const autograd::Var& text_embed,
                                     const autograd::Var& logit_scale) {
  const ItcLogits l = itc_logits(image_embed, text_embed, logit_scale);
  const int64_t B = image_embed.shape()[0];
  Tensor diagonal = Tensor::empty({B}, DType::i32);
  for (int64_t i = 0; i < B; ++i) diagonal.data<int32_t>()[i] = (int32_t)i;
  autograd::Var sum =
      autograd::add(autograd::cross_entropy(l.image_to_text, diagonal), autograd::cross_entropy(l.text_to_image, diagonal));
  return autograd::scale(sum, 0.5f);
}

bool names_repeat(const std::vector<std::string>& names) {
  std::vector<std::string> sorted = names;
  std::sort(sorted.begin(), sorted.end());
  return std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end();
}

autograd::Var image_text_contrastive(const autograd::Var& image_embed, const autograd::Var& text_embed,
                                     const autograd::Var& logit_scale, const std::vector<std::string>& names) {
  const int64_t B = (int64_t)names.size();
  GANNET_CHECK(image_embed.value().ndim() == 2 && image_embed.shape()[0] == B, "image_text_contrastive: ", B,
               " names for image embeddings ", image_embed.value().describe());
  if (!names_repeat(names)) return image_text_contrastive(image_embed, text_embed, logit_scale);
  Tensor targets = Tensor::zeros({B, B});
  for (int64_t i = 0; i < B; ++i) {
    int64_t same = 0;
    for (int64_t j = 0; j < B; ++j) same += names[(size_t)j] == names[(size_t)i];
    for (int64_t j = 0; j < B; ++j)
      if (names[(size_t)j] == names[(size_t)i]) targets.f32()[i * B + j] = 1.f / (float)same;
  }
  return image_text_contrastive_soft(image_embed, text_embed, logit_scale, targets);
}

autograd::Var image_text_contrastive_soft(const autograd::Var& image_embed, const autograd::Var& text_embed,
                                          const autograd::Var& logit_scale, const Tensor& targets) {
  const ItcLogits l = itc_logits(image_embed, text_embed, logit_scale);
  const int64_t B = image_embed.shape()[0];
  GANNET_CHECK(targets.dtype() == DType::f32 && targets.shape() == Shape({B, B}), "image_text_contrastive: targets ",
               targets.describe(), " for ", B, " pairs");
  // soft_cross_entropy takes its target as logits: log(target), a finite stand-in for log 0.
  Tensor log_targets = Tensor::empty({B, B});
  for (int64_t k = 0; k < B * B; ++k)
    log_targets.f32()[k] = targets.f32()[k] > 0.f ? std::log(targets.f32()[k]) : -1e30f;
  autograd::Var sum = autograd::add(autograd::soft_cross_entropy(l.image_to_text, log_targets),
                                    autograd::soft_cross_entropy(l.text_to_image, log_targets));
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

data::MlmBatch mask_text(const Tensor& text, const Tensor& text_mask, int64_t vocab_size, float ratio, Rng& rng) {
  GANNET_CHECK(ratio > 0.f && ratio < 1.f, "mlm: mask ratio ", ratio, " is not in (0, 1)");
  data::MlmMaskingOptions o;
  o.vocab_size = vocab_size;
  o.mask_prob = ratio;
  o.mask_id = data::GlyphTextTokenizer::kMask;
  o.num_special = data::GlyphTextTokenizer::kMask + 1;  // [PAD] [UNK] [CLS] [SEP] [MASK]
  return data::mask_tokens(text, text_mask, o, rng);
}

MlmLoss masked_language_modelling(const VlMoe& model, const Tensor& images, const Tensor& masked_text,
                                  const Tensor& text_mask, const Tensor& targets, uint64_t moe_seed) {
  GANNET_CHECK(targets.dtype() == DType::i32 && targets.shape() == masked_text.shape(), "mlm: targets ",
               targets.describe(), " do not match the text ", masked_text.describe());
  MlmLoss r;
  r.fused = model.forward({images, masked_text, text_mask}, moe_seed);
  const int64_t B = masked_text.dim(0), T = masked_text.dim(1), L = r.fused.image_tokens + T;
  std::vector<int32_t> rows, chosen;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      if (const int32_t id = targets.data<int32_t>()[b * T + t]; id >= 0) {
        rows.push_back((int32_t)(b * L + r.fused.image_tokens + t));
        chosen.push_back(id);
      }
  r.chosen = (int64_t)rows.size();
  if (rows.empty()) return r;
  Tensor row_index = Tensor::empty({r.chosen}, DType::i32), target = Tensor::empty({r.chosen}, DType::i32);
  std::copy(rows.begin(), rows.end(), row_index.data<int32_t>());
  std::copy(chosen.begin(), chosen.end(), target.data<int32_t>());
  r.loss = autograd::cross_entropy(model.mlm_logits(autograd::gather_rows(r.fused.hidden, row_index)), target);
  return r;
}

Tensor sample_patch_mask(int64_t batch, int64_t patches, float ratio, Rng& rng) {
  GANNET_CHECK(ratio > 0.f && ratio < 1.f, "mim: mask ratio ", ratio, " is not in (0, 1)");
  GANNET_CHECK(batch >= 0 && patches > 0, "mim: ", batch, " images of ", patches, " patches");
  const int64_t k = data::mlm_chosen_count(patches, ratio);
  Tensor mask = Tensor::zeros({batch, patches}, DType::u8);
  std::vector<int64_t> order((size_t)patches);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t i = 0; i < patches; ++i) order[(size_t)i] = i;
    for (int64_t i = 0; i < k; ++i) {  // a partial Fisher-Yates shuffle: the first k of a permutation
      std::swap(order[(size_t)i], order[(size_t)(i + (int64_t)rng.below((uint64_t)(patches - i)))]);
      mask.data<uint8_t>()[b * patches + order[(size_t)i]] = 1;
    }
  }
  return mask;
}

Tensor masked_patch_pixels(const Tensor& images, const Tensor& patch_mask, int64_t p) {
  const int64_t B = images.dim(0), S = images.dim(1), side = S / p, P = side * side;
  GANNET_CHECK(patch_mask.dtype() == DType::u8 && patch_mask.shape() == Shape({B, P}), "mim: patch mask ",
               patch_mask.describe(), " for ", B, " images of ", P, " patches");
  std::vector<float> pixels;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t k = 0; k < P; ++k) {
      if (!patch_mask.data<uint8_t>()[b * P + k]) continue;
      const int64_t y0 = (k / side) * p, x0 = (k % side) * p;
      for (int64_t y = 0; y < p; ++y)
        for (int64_t x = 0; x < p; ++x)
          pixels.push_back(images.data<uint8_t>()[(b * S + y0 + y) * S + x0 + x] * (1.f / 255.f));
    }
  Tensor t = Tensor::empty({(int64_t)pixels.size() / (p * p), p * p});
  std::copy(pixels.begin(), pixels.end(), t.f32());
  return t;
}

MimLoss masked_image_modelling(const VlMoe& model, const Tensor& images, const Tensor& patch_mask, uint64_t moe_seed) {
  MimLoss r;
  r.out = model.forward_masked({images, {}, {}}, patch_mask, moe_seed);
  const int64_t B = patch_mask.dim(0), P = patch_mask.dim(1), I = r.out.image_tokens;
  std::vector<int32_t> rows;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t k = 0; k < P; ++k)
      if (patch_mask.data<uint8_t>()[b * P + k]) rows.push_back((int32_t)(b * I + 1 + k));
  GANNET_CHECK(!rows.empty(), "mim: no patch is masked");
  Tensor row_index = Tensor::empty({(int64_t)rows.size()}, DType::i32);
  std::copy(rows.begin(), rows.end(), row_index.data<int32_t>());
  const autograd::Var predicted = model.mim_pixels(autograd::gather_rows(r.out.hidden, row_index));
  r.loss = autograd::mse(predicted, masked_patch_pixels(images, patch_mask, model.config().patch_size));
  return r;
}

}  // namespace gannet::models
