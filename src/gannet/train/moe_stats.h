// Routing analysis of a GPT-MoE (as the VL-MoE paper reports it): per MoE layer, over many
// evaluation windows, how the router spreads tokens over the experts (load before and after the
// capacity limit), how many choices the limit drops, how certain the router is (entropy), the
// balance loss, and which tokens each expert processes most often.
//
// MoeStatsAccumulator adds up what the MoE layers report in forward passes (nn::MoePass with
// keep_routing); analyze_moe runs a model over consecutive validation windows in evaluation mode
// and feeds it. Printing and charts live elsewhere (train/moe_report.h, train/moe_chart.h).
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gannet/core/tensor.h"
#include "gannet/data/token_file.h"
#include "gannet/models/gpt.h"
#include "gannet/nn/moe.h"

namespace gannet::train {

struct ExpertStats {
  int64_t demand = 0;  // routing choices naming this expert, before the capacity limit
  int64_t kept = 0;    // slots it processed
  // Its most frequent input tokens (token id, slots), most frequent first (ties: lower id).
  std::vector<std::pair<int32_t, int64_t>> top_tokens;
};

struct MoeLayerReport {
  int64_t block = 0;    // transformer block index
  int64_t experts = 0;  // E
  int64_t k = 1;        // choices per token (top-k); experts per token on average is kept / tokens
  bool expert_choice = false;
  int64_t tokens = 0;       // tokens routed (all passes)
  int64_t choices = 0;      // tokens * k (top-k); tokens (expert choice)
  int64_t dropped = 0;      // choices without a slot (top-k); tokens no expert took (expert choice)
  int64_t passes = 0;       // forward passes (batches) seen
  int64_t capacity = 0;     // slots per expert in one pass of the largest batch (-1: dropless)
  int64_t capacity_slots = 0;  // sum over passes of capacity * E (0 when dropless)
  double entropy = 0;       // mean router entropy per token (nats)
  double balance_loss = 0;  // per-pass balance loss, mean over passes weighted by tokens
  double z_loss = 0;        // likewise for the router z-loss
  std::vector<ExpertStats> expert;

  double dropped_fraction() const { return choices ? (double)dropped / (double)choices : 0.0; }
  // Entropy as a fraction of its maximum log E (0 for a single expert).
  double entropy_fraction() const;
  int64_t total_demand() const;
  int64_t total_kept() const;
  // Expert e's share of the routing choices (before capacity) and of the processed slots.
  double demand_share(int64_t e) const;
  double kept_share(int64_t e) const;
  // Expert e's slots as a fraction of its capacity over all passes (0 when dropless).
  double capacity_use(int64_t e) const;
};

struct MoeStats {
  int64_t windows = 0, seq_len = 0, batch = 0;  // what was analyzed
  std::vector<MoeLayerReport> layers;           // in block order
};

// Adds up the MoE layers' reports over forward passes.
class MoeStatsAccumulator {
 public:
  explicit MoeStatsAccumulator(const models::GptConfig& config);
  // One forward pass over `tokens` ([B, T] or [N] i32, in the order the model flattened them),
  // run with keep_routing: its per-layer stats and routings, one per MoE layer in block order.
  void add(const Tensor& tokens, const nn::MoePass& pass);
  // The totals so far, with each expert's `top` most frequent tokens.
  std::vector<MoeLayerReport> result(int64_t top) const;

 private:
  struct Layer {
    MoeLayerReport report;
    double entropy_sum = 0, balance_sum = 0, z_sum = 0;
    std::vector<std::unordered_map<int32_t, int64_t>> token_counts;  // per expert
  };
  std::vector<Layer> layers_;
};

struct MoeStatsOptions {
  int64_t seq_len = 0;      // window length (0: the model's n_ctx)
  int64_t batch = 8;        // windows per forward pass (the capacity limit applies per pass)
  int64_t max_windows = 0;  // windows to analyze from the start of the file (0: all)
  int64_t top = 8;          // most frequent tokens kept per expert
  uint64_t seed = 1;        // pass i runs with MoePass::seed = seed + i (random token selection)
};

// Runs `model` (which must have MoE layers) over consecutive non-overlapping windows of `file`
// (stride seq_len, as train::evaluate), `batch` windows per pass, in evaluation mode (no grad,
// eval_capacity_factor, no router noise), and adds up the routing. Throws on a dense model, a
// token file with a larger vocabulary than the model's, or fewer tokens than one window.
MoeStats analyze_moe(const models::Gpt& model, const data::TokenFile& file, const MoeStatsOptions& options);

}  // namespace gannet::train
