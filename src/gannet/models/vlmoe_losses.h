// VL-MoE's pre-training objectives over a batch of image-text pairs (models/vlmoe.h): the
// image-text contrastive loss (ITC), CLIP's, with every pair of the same text a positive; image-text
// matching (ITM) with hard negatives drawn from the contrastive similarities, ALBEF's and VLMo's;
// masked language modelling of the text conditioned on the image (MLM, VLMo's); and masked image
// modelling (MIM: the masked patches' pixels regressed, SimMIM's).
#pragma once
#include <string>
#include <vector>

#include "gannet/autograd/variable.h"
#include "gannet/core/rng.h"
#include "gannet/data/mlm_masking.h"
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

// The same when texts repeat (Fashion-MNIST's class names): names[k] is pair k's text, and every pair
// sharing row i's name is a positive of image i (and of text i): the target of each row (column) is
// spread uniformly over its same-name columns (rows). When the names are distinct this is exactly
// the loss above (the same ops, so the same bits).
autograd::Var image_text_contrastive(const autograd::Var& image_embed, const autograd::Var& text_embed,
                                     const autograd::Var& logit_scale, const std::vector<std::string>& names);
// ITC against explicit targets f32 [B, B]: row i the target distribution of image i over the texts,
// which must also be text i's over the images (a symmetric relation's rows normalised, as above).
// The soft cross-entropy of both directions, averaged.
autograd::Var image_text_contrastive_soft(const autograd::Var& image_embed, const autograd::Var& text_embed,
                                          const autograd::Var& logit_scale, const Tensor& targets);
// Whether any two of `names` are equal.
bool names_repeat(const std::vector<std::string>& names);

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

// MLM's corruption of a text batch i32 [B, T] with its mask u8 [B, T] (data/mlm_masking.h's BERT
// rule): per text, max(1, round(ratio * n)) of its n word tokens chosen uniformly without
// replacement (never [PAD], [CLS], [SEP], [UNK] or [MASK]: data::GlyphTextTokenizer's special ids),
// each replaced by [MASK] with probability 0.8, by a random word with probability 0.1, kept with
// probability 0.1; targets hold the original id at chosen positions and -1 elsewhere. ratio in (0, 1).
data::MlmBatch mask_text(const Tensor& text, const Tensor& text_mask, int64_t vocab_size, float ratio, Rng& rng);

struct MlmLoss {
  autograd::Var loss;  // scalar [1]: mean cross-entropy over the chosen positions; undefined when none
  int64_t chosen = 0;
  VlMoeOutput fused;   // the fusion pass (its MoE auxiliary losses and statistics)
};
// The model's MLM head on the fused text rows of the chosen positions: images u8 [B, S, S], the
// corrupted texts i32 [B, T] (mask_text's inputs) with their mask, targets i32 [B, T] (-1: none).
// The model must have mlm_head.
MlmLoss masked_language_modelling(const VlMoe& model, const Tensor& images, const Tensor& masked_text,
                                  const Tensor& text_mask, const Tensor& targets, uint64_t moe_seed = 0);

// MIM's mask: u8 [B, patches], per image max(1, round(ratio * patches)) patches chosen uniformly
// without replacement (1 = masked). ratio in (0, 1).
Tensor sample_patch_mask(int64_t batch, int64_t patches, float ratio, Rng& rng);

// The masked patches' pixels (/ 255, in [0, 1]) [M, p*p] of images u8 [B, S, S], in the model's
// patch order (row-major patches, row-major pixels), masked patches in (image, patch) order.
Tensor masked_patch_pixels(const Tensor& images, const Tensor& patch_mask, int64_t patch_size);

struct MimLoss {
  autograd::Var loss;  // scalar [1]: mean squared error over the masked patches' pixels
  VlMoeOutput out;     // the image-only pass with masked patches
};
// The model (mim_head) on images u8 [B, S, S] with patch_mask's patches replaced by the mask token;
// its MIM head on each masked patch's final row predicts the patch's pixels.
MimLoss masked_image_modelling(const VlMoe& model, const Tensor& images, const Tensor& patch_mask,
                               uint64_t moe_seed = 0);

}  // namespace gannet::models
