// GraphSAGE checkpoints: io/parameter_checkpoint.h's format with "model_type" "graphsage" and the
// GraphSageConfig as JSON in "model_config". Also the "model" block of a graph training config.
#pragma once
#include <nlohmann/json.hpp>

#include "gannet/io/json_config.h"
#include "gannet/io/parameter_checkpoint.h"
#include "gannet/models/graphsage.h"

namespace gannet::io {

// The keys of GraphSageConfig over `defaults` (type, hidden, layers, dropout; in_dim and
// num_classes only when `with_data_sizes`, as a checkpoint stores them: a training config takes
// them from its data set). Unknown keys are left for the caller's finish(). Not validated: the
// data sizes may still be missing.
models::GraphSageConfig read_graphsage_config(const JsonReader& r, const models::GraphSageConfig& defaults,
                                              bool with_data_sizes);
nlohmann::json graphsage_config_to_json(const models::GraphSageConfig& c);

void save_graphsage_checkpoint(const std::string& path, const models::GraphSage& model, optim::AdamW* optimizer,
                               const TrainState& state);
// The config stored in a GraphSAGE checkpoint, validated and checked against its tensors' shapes.
models::GraphSageConfig read_graphsage_checkpoint_config(const std::string& path);
// Loads weights into `model`, whose config must equal the file's; with an optimizer, its moments.
void load_graphsage_checkpoint(const std::string& path, models::GraphSage& model, optim::AdamW* optimizer,
                               TrainState* state);

}  // namespace gannet::io
