#include "gannet/data/glyph_batches.h"

#include <cstring>
#include <fstream>
#include <numeric>

#include <nlohmann/json.hpp>

#include "gannet/core/error.h"
#include "gannet/core/rng.h"
#include "gannet/io/safetensors.h"

namespace gannet::data {

namespace {
std::vector<std::string> read_names(const std::string& path) {
  std::ifstream in(path);
  GANNET_CHECK(in.good(), path, ": cannot open (run `gannet data prepare --dataset glyphs`)");
  std::vector<std::string> names;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    GANNET_CHECK(j.is_object() && j.contains("name") && j["name"].is_string(), path, ":", n,
                 ": not a JSON object with a string \"name\"");
    names.push_back(j["name"].get<std::string>());
  }
  return names;
}
}  // namespace

GlyphSet load_glyph_split(const std::string& dir, const std::string& split) {
  const std::string base = dir + "/" + split;
  const io::SafeTensors f = io::SafeTensors::open(base + ".safetensors");
  GlyphSet set;
  set.images = f.get("images");
  GANNET_CHECK(set.images.dtype() == DType::u8 && set.images.ndim() == 3, base, ".safetensors: images is ",
               shape_str(set.images.shape()), ", not u8 [N, S, S]");
  set.names = read_names(base + ".jsonl");
  GANNET_CHECK(set.size() == set.images.dim(0), base, ".jsonl: ", set.size(), " names for ", set.images.dim(0),
               " images");
  return set;
}

GlyphBatch make_glyph_batch(const GlyphSet& set, const GlyphTextTokenizer& tokenizer, std::vector<int64_t> pairs,
                            int64_t text_ctx) {
  const int64_t B = (int64_t)pairs.size(), S = set.images.dim(1), W = set.images.dim(2), pixels = S * W;
  GlyphBatch b;
  b.images = Tensor::empty({B, S, W}, DType::u8);
  std::vector<std::string> texts;
  for (int64_t i = 0; i < B; ++i) {
    std::memcpy(b.images.data<uint8_t>() + i * pixels, set.images.data<uint8_t>() + pairs[i] * pixels, pixels);
    texts.push_back(set.names[pairs[i]]);
  }
  tokenizer.encode_batch(texts, text_ctx, b.tokens, b.mask);
  b.pairs = std::move(pairs);
  return b;
}

GlyphBatches::GlyphBatches(const GlyphSet& set, const GlyphTextTokenizer& tokenizer, int64_t batch, int64_t text_ctx,
                           uint64_t seed)
    : set_(set), tokenizer_(tokenizer), batch_(batch), text_ctx_(text_ctx), seed_(seed) {
  GANNET_CHECK(batch >= 1 && batch <= set.size(), "glyph batches: a batch of ", batch, " pairs from a set of ",
               set.size());
}

const std::vector<int64_t>& GlyphBatches::order_of(int64_t epoch) {
  if (epoch == order_epoch_) return order_;
  order_.resize(set_.size());
  std::iota(order_.begin(), order_.end(), 0);
  Rng rng(seed_ ^ (0x9E3779B97F4A7C15ull * (uint64_t)(epoch + 1)));  // Rng's splitmix seeding spreads it
  for (int64_t i = set_.size() - 1; i > 0; --i) std::swap(order_[i], order_[rng.below(i + 1)]);
  order_epoch_ = epoch;
  return order_;
}

GlyphBatch GlyphBatches::batch(int64_t index) {
  const int64_t per_epoch = batches_per_epoch(), at = (index % per_epoch) * batch_;
  const std::vector<int64_t>& order = order_of(index / per_epoch);
  return make_glyph_batch(set_, tokenizer_, {order.begin() + at, order.begin() + at + batch_}, text_ctx_);
}

}  // namespace gannet::data
