#include "gannet/train/vlmoe_embeddings.h"

#include <algorithm>
#include <cstring>
#include <functional>

#include "gannet/autograd/contrastive_ops.h"
#include "gannet/autograd/tape.h"

namespace gannet::train {

namespace {

// Rows [0, n) through `project` (rows [at, at + count) -> their un-normalised projections), in
// chunks of `batch`, normalised and stacked.
Tensor embed_rows(int64_t n, int64_t dim, int64_t batch,
                  const std::function<autograd::Var(int64_t at, int64_t count)>& project) {
  GANNET_CHECK(batch >= 1, "embed: batch must be at least 1, got ", batch);
  autograd::NoGrad no_grad;
  Tensor out = Tensor::zeros({n, dim});
  for (int64_t at = 0; at < n; at += batch) {
    const int64_t count = std::min(batch, n - at);
    const Tensor rows = autograd::l2_normalize_rows(project(at, count)).value();
    std::memcpy(out.f32() + at * dim, rows.f32(), sizeof(float) * (size_t)(count * dim));
  }
  return out;
}

}  // namespace

Tensor embed_images(const models::VlMoe& model, const Tensor& images, int64_t batch) {
  GANNET_CHECK(images.dtype() == DType::u8 && images.ndim() == 3, "embed: images must be u8 [N, S, S], got ",
               images.describe());
  const int64_t pixels = images.dim(1) * images.dim(2);
  return embed_rows(images.dim(0), model.config().proj_dim, batch, [&](int64_t at, int64_t count) {
    Tensor chunk = Tensor::empty({count, images.dim(1), images.dim(2)}, DType::u8);
    std::memcpy(chunk.data<uint8_t>(), images.data<uint8_t>() + at * pixels, (size_t)(count * pixels));
    return model.image_projection(model.forward({chunk, {}, {}}).image_pooled);
  });
}

Tensor embed_texts(const models::VlMoe& model, const data::GlyphTextTokenizer& tokenizer,
                   const std::vector<std::string>& texts, int64_t batch) {
  return embed_rows((int64_t)texts.size(), model.config().proj_dim, batch, [&](int64_t at, int64_t count) {
    Tensor tokens, mask;
    tokenizer.encode_batch({texts.begin() + at, texts.begin() + at + count}, model.config().text_ctx, tokens, mask);
    return model.text_projection(model.forward({{}, tokens, mask}).text_pooled);
  });
}

}  // namespace gannet::train
