#include "gannet/train/zero_shot_classify.h"

#include <algorithm>
#include <cstring>

#include "gannet/kernels/gemm.h"
#include "gannet/train/vlmoe_embeddings.h"

namespace gannet::train {

ZeroShotResult zero_shot_classify(const models::VlMoe& model, const data::GlyphTextTokenizer& tokenizer,
                                  const Tensor& images, const std::vector<int32_t>& labels,
                                  const std::vector<std::string>& classes, int64_t batch, int64_t max_images) {
  GANNET_CHECK(images.dtype() == DType::u8 && images.ndim() == 3 && images.dim(0) == (int64_t)labels.size(),
               "zero-shot: images ", images.describe(), " for ", labels.size(), " labels");
  GANNET_CHECK(!classes.empty(), "zero-shot: no class names");
  GANNET_CHECK(images.dim(1) == model.config().image_size && images.dim(2) == model.config().image_size,
               "zero-shot: images are ", images.dim(1), "x", images.dim(2), ", the model's image_size is ",
               model.config().image_size);
  const int64_t N = max_images > 0 ? std::min(images.dim(0), max_images) : images.dim(0);
  const int64_t K = (int64_t)classes.size(), D = model.config().proj_dim;
  GANNET_CHECK(N > 0, "zero-shot: no image to classify");
  const Tensor text = embed_texts(model, tokenizer, classes, 1);  // [K, D], each name alone
  const Tensor img = embed_images(model, images.slice(0, N), batch);
  ZeroShotResult r{Tensor::zeros({N, K}), {}, metrics::ConfusionMatrix((int)K)};
  kernels::gemm(false, true, N, K, D, 1.0f, img.f32(), D, text.f32(), D, 0.0f, r.similarity.f32(), K);
  for (int64_t i = 0; i < N; ++i) {
    const float* row = r.similarity.f32() + i * K;
    const int32_t p = (int32_t)(std::max_element(row, row + K) - row);
    GANNET_CHECK(labels[(size_t)i] >= 0 && labels[(size_t)i] < K, "zero-shot: label ", labels[(size_t)i],
                 " of image ", i, " is not one of the ", K, " classes");
    r.predictions.push_back(p);
    r.confusion.add(labels[(size_t)i], p);
  }
  return r;
}

}  // namespace gannet::train
