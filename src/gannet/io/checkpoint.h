// Checkpoints: one safetensors file holding the model weights (under their parameter names), the
// AdamW moments ("optim.m.<name>", "optim.v.<name>"), and in the metadata the model config, the
// step, the optimizer step count and the data sampler's RNG state. A checkpoint is also a model
// file: eval and generate read only the weights and the config.
#pragma once
#include <array>
#include <string>

#include "gannet/models/gpt.h"
#include "gannet/io/parameter_checkpoint.h"
#include "gannet/optim/adamw.h"

namespace gannet::io {

// Writes atomically: an interrupted save leaves the previous checkpoint intact.
void save_checkpoint(const std::string& path, const models::Gpt& model, optim::AdamW* optimizer,
                     const TrainState& state);

// The model config stored in a checkpoint or model file. Both functions also read sharded
// checkpoints (io/sharded_checkpoint.h: a manifest.json or the directory holding it), whose
// tensors they reassemble whole. The config is checked against sane limits (GptConfig::validate)
// and against the shapes of the tensors that fix its sizes (wpe, ln_f, the last block) before it is
// returned, so that a model built from it fits the file.
models::GptConfig read_checkpoint_config(const std::string& path);
// Loads weights into `model`, whose config must equal the file's (an error names both otherwise);
// with an optimizer, also its moments and step count, and fills `state`.
void load_checkpoint(const std::string& path, models::Gpt& model, optim::AdamW* optimizer, TrainState* state);

}  // namespace gannet::io
