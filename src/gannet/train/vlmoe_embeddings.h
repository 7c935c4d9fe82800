// What a trained VL-MoE maps an image or a text to, for retrieval by hand (`gannet embed`,
// `gannet search`): the ITC projection of the modality's pooled [CLS] vector, L2-normalised, so the
// dot product of an image's and a text's rows is the cosine that ITC and the retrieval figures
// (train/evaluate_vlmoe.h) score them by. Images and texts are encoded apart, MoE layers in
// evaluation mode. By default each image or text is encoded alone, in a forward pass of its own: an
// MoE layer's capacity is per pass, so with token dropping an embedding would otherwise depend on
// what else shares its batch (evaluate_vlmoe's figures, over batches, can differ slightly).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gannet/data/glyph_text_tokenizer.h"
#include "gannet/models/vlmoe.h"

namespace gannet::train {

// images u8 [N, S, S] -> f32 [N, proj_dim], `batch` images per forward pass.
Tensor embed_images(const models::VlMoe& model, const Tensor& images, int64_t batch = 1);
// N texts, tokenized to the model's text_ctx -> f32 [N, proj_dim].
Tensor embed_texts(const models::VlMoe& model, const data::GlyphTextTokenizer& tokenizer,
                   const std::vector<std::string>& texts, int64_t batch = 1);

}  // namespace gannet::train
