// The `data_efficiency` config block, with DeepSpeed's keys: curriculum learning
// (data_sampling.curriculum_learning), random-LTD (data_routing.random_ltd) and the layer-token
// learning-rate schedule (data_routing.random_ltd.layer_token_lr_schedule). Every key is checked:
// an unknown key or an unsupported value is an error that names it. A block applies only when it
// and every block above it have "enabled": true (DeepSpeed's rule); disabled blocks are still
// checked. See docs/data_efficiency.md.
#pragma once
#include <cstdint>
#include <vector>

#include "gannet/data/curriculum.h"
#include "gannet/data/pacing.h"
#include "gannet/io/json_config.h"
#include "gannet/models/gpt.h"

namespace gannet::train {

struct RandomLtdConfig {
  bool enabled = false;
  std::vector<int64_t> layers;  // random_ltd_layer_id
  data::Pacing schedule;        // random_ltd_schedule: kept tokens per sequence
};

struct LayerTokenLrConfig {
  bool enabled = false;
  double total_layer_tokens = 0;   // 0: the layer-tokens of the whole run
  double warmup_layer_tokens = -1; // -1: the layer-tokens of the first scheduler.warmup_num_steps steps
  bool log_warmup = false;         // warmup_type "log" (else "linear")
};

struct DataEfficiencyConfig {
  uint64_t seed = 1234;  // data_efficiency.seed (default: the config's seed)
  data::CurriculumConfig curriculum;
  RandomLtdConfig random_ltd;
  LayerTokenLrConfig layer_token_lr;
};

// Reads `data_efficiency`: r is the reader of that object, raw the object itself (for the names of
// curriculum_metrics). seq_len is data.seq_len.
DataEfficiencyConfig read_data_efficiency(const io::JsonReader& r, const nlohmann::json& raw,
                                          const models::GptConfig& model, int64_t seq_len, uint64_t default_seed);

}  // namespace gannet::train
