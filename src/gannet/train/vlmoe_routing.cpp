#include "gannet/train/vlmoe_routing.h"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "gannet/autograd/tape.h"
#include "gannet/core/error.h"

namespace gannet::train {

namespace {

// MoeStatsAccumulator reads the MoE layout from a GPT config; a VL-MoE's MoE layers sit in its lower
// blocks with the same rule (VlMoeConfig::experts_at), so a GPT of the lower blocks has the same.
models::GptConfig layout_of(const models::VlMoeConfig& c) {
  models::GptConfig g;
  g.n_layer = c.lower_layers();
  g.moe = c.moe;
  return g;
}

// The image tokens' positions [B * I] and the real text tokens' ids, in the order the model routes
// them (pair by pair; within a pair, position order).
Tensor image_positions(int64_t B, int64_t I) {
  Tensor t = Tensor::empty({B * I}, DType::i32);
  for (int64_t i = 0; i < B * I; ++i) t.data<int32_t>()[i] = (int32_t)(i % I);
  return t;
}

Tensor real_text_tokens(const Tensor& tokens, const Tensor& mask) {
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < tokens.numel(); ++i)
    if (mask.data<uint8_t>()[i]) ids.push_back(tokens.data<int32_t>()[i]);
  Tensor t = Tensor::empty({(int64_t)ids.size()}, DType::i32);
  std::copy(ids.begin(), ids.end(), t.data<int32_t>());
  return t;
}

}  // namespace

double ExpertModality::image_share() const {
  return image_tokens + text_tokens > 0 ? (double)image_tokens / (double)(image_tokens + text_tokens) : 0.0;
}

std::vector<ExpertModality> expert_modalities(const VlMoeRouting& r, size_t layer) {
  std::vector<ExpertModality> out;
  for (const bool image : {true, false}) {
    const MoeLayerReport& l = (image ? r.image : r.text).layers[layer];
    for (int64_t e = 0; e < l.experts; ++e) {
      const int64_t n = l.expert[(size_t)e].demand;
      out.push_back({str(image ? "V-MoE " : "T-MoE ", e), image ? n : 0, image ? 0 : n});
    }
  }
  return out;
}

VlMoeRouting analyze_vlmoe_routing(const models::VlMoe& model, const data::GlyphSet& set,
                                   const data::GlyphTextTokenizer& tokenizer, const MoeStatsOptions& o) {
  const models::VlMoeConfig& c = model.config();
  GANNET_CHECK(!c.dense && c.moe.enabled(), "the model has no MoE layer (the dense counterpart); moe-stats needs a VL-MoE");
  GANNET_CHECK(o.batch >= 1, "batch must be at least 1, got ", o.batch);
  GANNET_CHECK(set.size() > 0, "the glyph split is empty");
  const int64_t n = o.max_windows > 0 ? std::min(o.max_windows, set.size()) : set.size();
  autograd::NoGrad no_grad;
  MoeStatsAccumulator image(layout_of(c)), text(layout_of(c));
  int64_t text_tokens = 0;
  for (int64_t at = 0, i = 0; at < n; at += o.batch, ++i) {
    std::vector<int64_t> pairs((size_t)std::min(o.batch, n - at));
    std::iota(pairs.begin(), pairs.end(), at);
    const data::GlyphBatch b = data::make_glyph_batch(set, tokenizer, pairs, c.text_ctx);
    const uint64_t seed = o.seed + (uint64_t)i;
    image.add(image_positions((int64_t)pairs.size(), c.image_tokens()),
              model.forward({b.images, {}, {}}, seed, true).image_moe);
    const Tensor words = real_text_tokens(b.tokens, b.mask);
    text.add(words, model.forward({{}, b.tokens, b.mask}, seed, true).text_moe);
    text_tokens += words.numel();
  }
  VlMoeRouting r;
  r.text_tokens = text_tokens;
  r.pairs = n;
  r.batch = o.batch;
  for (auto [stats, acc] : {std::pair{&r.image, &image}, std::pair{&r.text, &text}}) {
    stats->windows = n;
    stats->batch = o.batch;
    stats->seq_len = stats == &r.image ? c.image_tokens() : c.text_ctx;  // a text's longest
    stats->layers = acc->result(o.top);
  }
  return r;
}

std::string image_token_name(const models::VlMoeConfig& c, int32_t position) {
  if (position == 0) return "[CLS]";
  const int64_t g = c.image_size / c.patch_size;
  return "patch " + std::to_string((position - 1) / g) + "," + std::to_string((position - 1) % g);
}

std::string format_modality_table(const VlMoeRouting& r) {
  std::string out =
      "routing choices per expert by modality (before the capacity limit); the experts are modality-specific, so "
      "a V-MoE expert sees only image tokens and a T-MoE expert only text tokens:\n";
  char line[160];
  for (size_t l = 0; l < r.image.layers.size(); ++l) {
    std::snprintf(line, sizeof line, "block %ld\n  %-8s  %12s  %11s  %11s\n", (long)r.image.layers[l].block, "expert",
                  "image tokens", "text tokens", "image share");
    out += line;
    for (const ExpertModality& e : expert_modalities(r, l)) {
      std::snprintf(line, sizeof line, "  %-8s  %12ld  %11ld  %10.1f%%\n", e.expert.c_str(), (long)e.image_tokens,
                    (long)e.text_tokens, 100.0 * e.image_share());
      out += line;
    }
  }
  return out;
}

nlohmann::json vlmoe_routing_json(const VlMoeRouting& r, const TokenName& image_name, const TokenName& text_name) {
  nlohmann::json layers = nlohmann::json::array();
  for (size_t l = 0; l < r.image.layers.size(); ++l) {
    nlohmann::json experts = nlohmann::json::array();
    for (const ExpertModality& e : expert_modalities(r, l))
      experts.push_back({{"expert", e.expert},
                         {"image_tokens", e.image_tokens},
                         {"text_tokens", e.text_tokens},
                         {"image_share", e.image_share()}});
    layers.push_back({{"block", r.image.layers[l].block}, {"experts", experts}});
  }
  return {{"pairs", r.pairs},
          {"batch", r.batch},
          {"text_tokens", r.text_tokens},
          {"modality", layers},
          {"image", moe_stats_json(r.image, image_name)},
          {"text", moe_stats_json(r.text, text_name)}};
}

}  // namespace gannet::train
