// Encoder checkpoints and model files: io/parameter_checkpoint.h's format with "model_type"
// "encoder" and the EncoderConfig as JSON in "model_config". Also the encoder's "model" block of
// a training config.
#pragma once
#include <nlohmann/json.hpp>

#include "gannet/io/json_config.h"
#include "gannet/io/parameter_checkpoint.h"
#include "gannet/models/encoder.h"

namespace gannet::io {

// The keys of EncoderConfig over `defaults` (unknown keys are left for the caller's finish());
// validated.
models::EncoderConfig read_encoder_config(const JsonReader& r, const models::EncoderConfig& defaults = {});
nlohmann::json encoder_config_to_json(const models::EncoderConfig& c);

void save_encoder_checkpoint(const std::string& path, const models::Encoder& model, optim::AdamW* optimizer,
                             const TrainState& state);
// The config stored in an encoder checkpoint, checked against sane limits and against the shapes
// of the tensors that fix its sizes before it is returned.
models::EncoderConfig read_encoder_checkpoint_config(const std::string& path);
// Loads weights into `model`, whose config must equal the file's; with an optimizer, its moments.
void load_encoder_checkpoint(const std::string& path, models::Encoder& model, optim::AdamW* optimizer,
                             TrainState* state);
// Loads only the trunk (embeddings, blocks, final LayerNorm) from an encoder checkpoint whose trunk
// has the same sizes, whatever its heads: fine-tuning from a pre-trained (MLM) model.
void load_encoder_trunk(const std::string& path, models::Encoder& model);

}  // namespace gannet::io
