// Batches of glyph image-text pairs (data/glyph_pairs.h's files) for VL-MoE's training and
// evaluation: a split read back from DIR/<split>.{safetensors,jsonl}, and deterministic shuffled
// micro-batches of (image, tokenized name).
//
// Data order: epochs over the split, each a fresh permutation drawn from (seed, epoch); micro-batch
// `index` of the run is the (index mod E)-th run of `batch` pairs of epoch index / E, where E =
// floor(N / batch): an epoch's short tail is left out so that every batch holds `batch` pairs (ITC's
// negatives are the batch's other pairs). Everything follows from the seed and the index, so a resumed
// run draws what an uninterrupted one would.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gannet/core/tensor.h"
#include "gannet/data/glyph_text_tokenizer.h"

namespace gannet::data {

struct GlyphSet {
  Tensor images;                   // u8 [N, S, S]
  std::vector<std::string> names;  // N texts, in the images' order
  int64_t size() const { return (int64_t)names.size(); }
};

// Reads DIR/<split>.safetensors (images) and DIR/<split>.jsonl (names); errors name the file.
GlyphSet load_glyph_split(const std::string& dir, const std::string& split);

struct GlyphBatch {
  std::vector<int64_t> pairs;  // indices into the set
  Tensor images;               // u8 [B, S, S]
  Tensor tokens, mask;         // i32 / u8 [B, text_ctx]: GlyphTextTokenizer::encode_batch's
};

// Pairs `pairs` of `set`, the texts tokenized to `text_ctx` tokens.
GlyphBatch make_glyph_batch(const GlyphSet& set, const GlyphTextTokenizer& tokenizer, std::vector<int64_t> pairs,
                            int64_t text_ctx);

class GlyphBatches {
 public:
  // `set` and `tokenizer` must outlive this. batch must be in [1, set.size()].
  GlyphBatches(const GlyphSet& set, const GlyphTextTokenizer& tokenizer, int64_t batch, int64_t text_ctx,
               uint64_t seed);
  GlyphBatch batch(int64_t index);
  int64_t batches_per_epoch() const { return set_.size() / batch_; }

 private:
  const std::vector<int64_t>& order_of(int64_t epoch);

  const GlyphSet& set_;
  const GlyphTextTokenizer& tokenizer_;
  int64_t batch_, text_ctx_;
  uint64_t seed_;
  std::vector<int64_t> order_;  // the permutation of epoch order_epoch_
  int64_t order_epoch_ = -1;
};

}  // namespace gannet::data
