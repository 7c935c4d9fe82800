// VL-MoE's pre-training objectives over a batch of image-text pairs (models/vlmoe.h). So far the
// image-text contrastive loss (ITC), CLIP's.
#pragma once
#include "gannet/autograd/variable.h"

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

}  // namespace gannet::models
