// Expert load of a GPT-MoE as an SVG heatmap: one row per MoE layer, one cell per expert (rows
// may hold different numbers of experts: a pyramid), coloured by the expert's share of the routing
// choices relative to the uniform share 1/E (blue below, white at, red above), with each cell's
// percentage and a bar for the slots it processed as a fraction of its capacity, each row's
// dropped fraction and router entropy, a title and a colour legend. Each cell's tooltip gives its
// choices, slots, capacity use and most frequent tokens.
#pragma once
#include <string>

#include "gannet/train/moe_report.h"
#include "gannet/train/moe_stats.h"

namespace gannet::train {

struct MoeChartOptions {
  std::string title;     // after "Expert load per MoE layer: ", e.g. the model path
  TokenName token_name;  // for the tooltips' top tokens (nullptr: ids)
};

// The SVG text.
std::string moe_chart_svg(const MoeStats& stats, const MoeChartOptions& options = {});
// Writes it to `path` atomically.
void write_moe_chart(const MoeStats& stats, const std::string& path, const MoeChartOptions& options = {});

}  // namespace gannet::train
