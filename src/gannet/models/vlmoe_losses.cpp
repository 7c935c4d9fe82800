#include "gannet/models/vlmoe_losses.h"

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

}  // namespace gannet::models
