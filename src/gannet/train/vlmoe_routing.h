// Routing of a VL-MoE per modality (the VL-MoE paper's analysis): over the pairs of a glyph split,
// images and texts encoded apart as ITC does, MoE layers in evaluation mode, what the V-MoE layers do
// with the image tokens and the T-MoE layers with the text tokens (train/moe_stats.h's report for
// each), and per MoE block every expert's image and text tokens and the image share. The experts are
// modality-specific by design (a block's V-MoE experts are not its T-MoE experts), so a V-MoE expert's
// share is 1 and a T-MoE expert's 0 by construction; the table says so rather than pairing unrelated
// experts. What an expert specialises in is in its top tokens.
//
// An image token's "token" in the top-token lists is its position: 0 the image [CLS], 1 + r g + c
// the patch in row r, column c of the g x g grid. A text token's is its word id.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "gannet/data/glyph_batches.h"
#include "gannet/models/vlmoe.h"
#include "gannet/train/moe_report.h"
#include "gannet/train/moe_stats.h"

namespace gannet::train {

struct VlMoeRouting {
  int64_t pairs = 0, batch = 0;  // pairs analyzed, pairs per forward pass
  int64_t text_tokens = 0;       // real text tokens routed per MoE layer ([CLS] and [SEP] included)
  MoeStats image, text;          // the V-MoE and T-MoE layers, in block order (the same blocks)
};

// One expert of an MoE block: routing choices (before the capacity limit) by modality.
struct ExpertModality {
  std::string expert;  // "V-MoE 2", "T-MoE 0"
  int64_t image_tokens = 0, text_tokens = 0;
  double image_share() const;  // image / (image + text); 0 when none chose it
};
// MoE layer `layer`'s V-MoE experts, then its T-MoE experts.
std::vector<ExpertModality> expert_modalities(const VlMoeRouting& routing, size_t layer);

// Options: batch (pairs per pass), max_windows (pairs from the split's start, 0: all), top, seed;
// seq_len is unused. Throws on a model without MoE layers (the dense counterpart).
VlMoeRouting analyze_vlmoe_routing(const models::VlMoe& model, const data::GlyphSet& set,
                                   const data::GlyphTextTokenizer& tokenizer, const MoeStatsOptions& options);

// "[CLS]" or "patch r,c" for an image token position.
std::string image_token_name(const models::VlMoeConfig& config, int32_t position);

// Per MoE block, one line per expert (V-MoE then T-MoE): image and text choices and the image share.
std::string format_modality_table(const VlMoeRouting& routing);
// Both modalities' moe_stats_json and the per-expert image/text choices and shares.
nlohmann::json vlmoe_routing_json(const VlMoeRouting& routing, const TokenName& image_name,
                                  const TokenName& text_name);

}  // namespace gannet::train
