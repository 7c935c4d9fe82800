// VL-MoE's validation on a held-out glyph split: the ITC loss and image-text retrieval. Each image
// is ranked against every text of the split and each text against every image, by the cosine
// similarity of their ITC projections (images and texts encoded apart, MoE layers in evaluation
// mode). A glyph's name is its text; when several glyphs share a name, any of their texts (images)
// counts as a hit. Ties break against the hit: a candidate that is not a hit and scores as high as
// the best hit ranks above it, so a constant model scores no recall.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gannet/data/glyph_batches.h"
#include "gannet/models/vlmoe.h"

namespace gannet::train {

struct RetrievalRecall {
  double i2t_r1 = 0, i2t_r5 = 0;  // image -> text: share of images with a hit among the top 1 / top 5 texts
  double t2i_r1 = 0, t2i_r5 = 0;  // text -> image
};

// similarity f32 [N, N]: row i an image, column j a text; names[k] is pair k's text.
RetrievalRecall retrieval_recall(const Tensor& similarity, const std::vector<std::string>& names);

struct VlMoeEval {
  int64_t pairs = 0;
  // ITC over consecutive batches of `batch` pairs (in-batch negatives; pairs of one name all
  // positives), mean per pair
  double loss = 0;
  RetrievalRecall recall;
};

// Over the first max_pairs pairs of `set` (all when 0), `batch` at a time.
VlMoeEval evaluate_vlmoe(const models::VlMoe& model, const data::GlyphSet& set,
                         const data::GlyphTextTokenizer& tokenizer, int64_t batch, int64_t max_pairs);

}  // namespace gannet::train
