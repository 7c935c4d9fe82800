// The routing analysis (train/moe_stats.h) as a readable text table and as JSON.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "gannet/train/moe_stats.h"

namespace gannet::train {

// How a token id is shown (e.g. its SentencePiece piece "▁the"); nullptr: the id as a number.
using TokenName = std::function<std::string(int32_t)>;

// Per MoE layer: tokens routed, capacity, dropped fraction, router entropy (nats and as a fraction
// of log E), balance and z-loss, the peak load; then one line per expert: its share of the routing
// choices (before capacity), of the processed slots, its capacity use, and its most frequent tokens
// as "piece (count)".
std::string format_moe_table(const MoeStats& stats, const TokenName& token_name = nullptr);

// Every number of the analysis; top tokens as {"id", "piece", "count"} ("piece" only with a token_name).
nlohmann::json moe_stats_json(const MoeStats& stats, const TokenName& token_name = nullptr);

}  // namespace gannet::train
