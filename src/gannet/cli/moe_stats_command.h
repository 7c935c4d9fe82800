// `gannet moe-stats MODEL DATA`: the routing analysis of a GPT-MoE on a data directory's
// validation windows (train/moe_stats.h): a table per MoE layer, an SVG chart of expert load, and
// optionally every number as JSON.
#pragma once

namespace CLI {
class App;
}

namespace gannet::cli {

void add_moe_stats_command(CLI::App& app);

}  // namespace gannet::cli
