// `gannet moe-stats` on a VL-MoE checkpoint: routing per modality over a glyph split
// (train/vlmoe_routing.h): per MoE block and expert the image and text tokens that chose it and the
// image share, then the V-MoE and T-MoE layers' full tables (top tokens: image patch positions and
// words), an expert-load chart per modality, and optionally every number as JSON.
#pragma once
#include <string>

#include "gannet/train/moe_stats.h"

namespace gannet::cli {

struct VlMoeStatsRequest {
  std::string model, data, split = "test_chars";
  std::string chart;  // charts CHART with .image / .text before its extension (default MODEL.moe.svg)
  std::string json;   // empty: none
  train::MoeStatsOptions options;  // batch: pairs per pass; max_windows: pairs (0: all)
};

void run_vlmoe_moe_stats(const VlMoeStatsRequest& request);

// CHART's path for one modality: "run/ckpt.moe.svg", "image" -> "run/ckpt.moe.image.svg".
std::string modality_chart_path(const std::string& chart, const std::string& modality);

}  // namespace gannet::cli
