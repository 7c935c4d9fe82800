// Per-MoE-layer statistics of one optimizer step, averaged over its micro-batches, for the
// metrics log: balance loss, z-loss, dropped fraction, router entropy and expert load (the
// fraction of routing choices that named each expert, before the capacity limit).
#pragma once
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "gannet/nn/moe.h"

namespace gannet::train {

class MoeLog {
 public:
  // One micro-batch's statistics and auxiliary loss.
  void add(const std::vector<nn::MoeLayerStats>& layers, double aux_loss);
  // The step's averages as {"aux_loss", "layers": [...]}; starts the next step.
  nlohmann::json take();
  // The mean dropped fraction over layers of the last step taken.
  double last_dropped() const { return last_dropped_; }

 private:
  std::vector<nn::MoeLayerStats> sum_;
  double aux_ = 0;
  int64_t micro_ = 0;
  double last_dropped_ = 0;
};

}  // namespace gannet::train
