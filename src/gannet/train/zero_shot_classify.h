// Zero-shot image classification with a VL-MoE pre-trained by ITC (issue 21): each class name is
// encoded once as a text ([CLS] words [SEP], the run's tokenizer), each image as an image, both
// through their ITC projections, L2-normalised (train/vlmoe_embeddings.h); an image is predicted
// as the class whose text has the highest cosine (the lowest class index on a tie). No training on
// the classes' labels: e.g. Fashion-MNIST's ten class names against its test images.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gannet/data/glyph_text_tokenizer.h"
#include "gannet/metrics/classification_metrics.h"
#include "gannet/models/vlmoe.h"

namespace gannet::train {

struct ZeroShotResult {
  Tensor similarity;                 // f32 [N, K]: cos(image i, class name k)
  std::vector<int32_t> predictions;  // [N]
  metrics::ConfusionMatrix confusion{1};
};

// images u8 [N, S, S] with labels [N] (each < classes.size()); `batch` images a forward pass (an MoE
// layer's capacity is per pass: 1 makes each image's embedding independent of its neighbours);
// only the first max_images (all when 0).
ZeroShotResult zero_shot_classify(const models::VlMoe& model, const data::GlyphTextTokenizer& tokenizer,
                                  const Tensor& images, const std::vector<int32_t>& labels,
                                  const std::vector<std::string>& classes, int64_t batch, int64_t max_images);

}  // namespace gannet::train
