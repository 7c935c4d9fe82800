#include "gannet/train/evaluate_vlmoe.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <numeric>

#include "gannet/autograd/contrastive_ops.h"
#include "gannet/autograd/tape.h"
#include "gannet/kernels/gemm.h"
#include "gannet/models/vlmoe_losses.h"

namespace gannet::train {

namespace {

// The rank (1 = first) of candidate set's best hit: 1 + the non-hits scoring at least as high.
int64_t rank_of_best_hit(int64_t n, const std::function<float(int64_t)>& score,
                         const std::function<bool(int64_t)>& hit) {
  float best = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < n; ++j)
    if (hit(j)) best = std::max(best, score(j));
  int64_t above = 0;
  for (int64_t j = 0; j < n; ++j) above += !hit(j) && score(j) >= best;
  return 1 + above;
}

// The row-normalised ITC projections of every pair: images and texts, N x dim each, row-major.
struct Embeddings {
  std::vector<float> images, texts;
  int64_t dim = 0;
};

void append_rows(std::vector<float>& to, const Tensor& rows) {
  to.insert(to.end(), rows.f32(), rows.f32() + rows.numel());
}

}  // namespace

RetrievalRecall retrieval_recall(const Tensor& similarity, const std::vector<std::string>& names) {
  const int64_t n = (int64_t)names.size();
  GANNET_CHECK(similarity.ndim() == 2 && similarity.dim(0) == n && similarity.dim(1) == n,
               "retrieval: similarity is ", shape_str(similarity.shape()), " for ", n, " pairs");
  const float* s = similarity.f32();
  RetrievalRecall r;
  for (int64_t i = 0; i < n; ++i) {
    const auto same_name = [&](int64_t j) { return names[j] == names[i]; };
    const int64_t i2t = rank_of_best_hit(n, [&](int64_t j) { return s[i * n + j]; }, same_name);
    const int64_t t2i = rank_of_best_hit(n, [&](int64_t j) { return s[j * n + i]; }, same_name);
    r.i2t_r1 += i2t <= 1;
    r.i2t_r5 += i2t <= 5;
    r.t2i_r1 += t2i <= 1;
    r.t2i_r5 += t2i <= 5;
  }
  for (double* v : {&r.i2t_r1, &r.i2t_r5, &r.t2i_r1, &r.t2i_r5}) *v /= std::max<int64_t>(1, n);
  return r;
}

VlMoeEval evaluate_vlmoe(const models::VlMoe& model, const data::GlyphSet& set,
                         const data::GlyphTextTokenizer& tokenizer, int64_t batch, int64_t max_pairs) {
  autograd::NoGrad no_grad;
  const int64_t n = max_pairs > 0 ? std::min(max_pairs, set.size()) : set.size();
  VlMoeEval e;
  e.pairs = n;
  Embeddings emb;
  for (int64_t at = 0; at < n; at += batch) {
    std::vector<int64_t> pairs(std::min(batch, n - at));
    std::iota(pairs.begin(), pairs.end(), at);
    const data::GlyphBatch b = data::make_glyph_batch(set, tokenizer, pairs, model.config().text_ctx);
    const autograd::Var img = model.image_projection(model.forward({b.images, {}, {}}).image_pooled);
    const autograd::Var txt = model.text_projection(model.forward({{}, b.tokens, b.mask}).text_pooled);
    std::vector<std::string> names;  // pairs of one name are all positives (Fashion-MNIST's classes)
    for (int64_t p : pairs) names.push_back(set.names[(size_t)p]);
    const double loss = models::image_text_contrastive(img, txt, model.logit_scale(), names).value().f32()[0];
    e.loss += loss * (double)pairs.size() / (double)n;
    append_rows(emb.images, autograd::l2_normalize_rows(img).value());
    append_rows(emb.texts, autograd::l2_normalize_rows(txt).value());
    emb.dim = img.value().dim(1);
  }
  // similarity[i, j] = cosine of image i and text j: images x texts^T.
  Tensor similarity = Tensor::zeros({n, n});
  kernels::gemm(false, true, n, n, emb.dim, 1.0f, emb.images.data(), emb.dim, emb.texts.data(), emb.dim, 0.0f,
                similarity.f32(), n);
  e.recall = retrieval_recall(similarity, {set.names.begin(), set.names.begin() + n});
  return e;
}

}  // namespace gannet::train
