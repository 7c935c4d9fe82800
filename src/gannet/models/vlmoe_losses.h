// VL-MoE's pre-training objectives over a batch of image-text pairs (models/vlmoe.h): the
// image-text contrastive loss (ITC), CLIP's, and image-text matching (ITM) with hard negatives drawn
// from the contrastive similarities, ALBEF's and VLMo's.
#pragma once
#include <string>
#include <vector>

#include "gannet/autograd/variable.h"
#include "gannet/core/rng.h"
#include "gannet/models/vlmoe.h"

namespace gannet::models {

// CLIP keeps its logit scale exp(s) at most 100: s is clamped at ln 100.
constexpr float kMaxLogitScale = 4.6051702f;
// CLIP's initial temperature 0.07: s = ln(1 / 0.07).
constexpr float kInitialLogitScale = 2.6592600f;

// Symmetric InfoNCE over in-batch similarities: the rows of image_embed and text_embed [B, D] are
// L2-normalised, logits = exp(min(s, ln 100)) * img txt^T [B, B], and the loss is the mean of the
// cross-entropies image->text (rows) and text->image (columns) with the pairs on the diagonal.
// logit_scale: the learned s [1]. Returns a scalar [1].
autograd::Var image_text_contrastive(const autograd::Var& image_embed, const autograd::Var& text_embed,
                                     const autograd::Var& logit_scale);

// ITM's hard negatives for a batch of B pairs: for image i a text j drawn with probability
// softmax_j(similarity[i, j]) over the texts whose name differs from i's, and for text j an image i
// drawn with probability softmax_i(similarity[i, j]) likewise (similar but wrong partners are the
// likeliest). similarity f32 [B, B]: row i an image, column j a text (ITC's logits). -1 where every
// other pair shares the name.
struct ItmNegatives {
  std::vector<int64_t> text_for_image, image_for_text;
};
ItmNegatives sample_itm_negatives(const Tensor& similarity, const std::vector<std::string>& names, Rng& rng);

// The pairs ITM classifies: the B positives (i, i), then (i, text_for_image[i]) and
// (image_for_text[j], j) for each negative drawn; label 1 for a positive, 0 for a negative.
struct ItmPairs {
  std::vector<int64_t> image, text;
  Tensor labels;  // i32 [pairs]
};
ItmPairs itm_pairs(const ItmNegatives& negatives);

struct ItmLoss {
  autograd::Var loss;   // scalar [1]: mean cross-entropy of the ITM head over the pairs
  VlMoeOutput fused;    // the fusion pass (its MoE auxiliary losses and statistics)
};
// The model's ITM head on the fused image [CLS] of each pair of `pairs`: images u8 [B, S, S] and
// texts i32 [B, T] with mask, the batch the pairs index. The model must have itm_head.
ItmLoss image_text_matching(const VlMoe& model, const Tensor& images, const Tensor& text, const Tensor& text_mask,
                            const ItmPairs& pairs, uint64_t moe_seed = 0);

}  // namespace gannet::models
