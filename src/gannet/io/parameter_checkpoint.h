// The model-independent part of checkpoints: a safetensors file holding parameters under their
// names, the AdamW moments ("optim.m.<name>", "optim.v.<name>", and "optim_step" in the metadata)
// and the training state ("step", "rng", "train_config" in the metadata, a task's tensors as
// "task.<name>"). Each model's checkpoint
// (io/checkpoint.h for the GPT, io/encoder_checkpoint.h) adds its "model_config" and "model_type".
#pragma once
#include <array>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "gannet/io/safetensors.h"
#include "gannet/nn/parameter.h"
#include "gannet/optim/adamw.h"

namespace gannet::io {

struct TrainState {
  int64_t step = 0;                  // optimizer updates done
  std::array<uint64_t, 4> rng{};     // data sampler state
  std::string train_config;          // the training config text, for reference
  // A task's own state (e.g. ADMM's auxiliary variables and the pruning masks), stored as
  // "task.<name>" f32 tensors: saved as given; a load fills the listed tensors in place (each must be
  // in the file with its shape).
  std::vector<std::pair<std::string, Tensor>> task_tensors;
};

// Writes atomically: an interrupted save leaves the previous checkpoint intact. `metadata` is
// the model's (its config); the format stamp, state and optimizer step are added.
void save_parameter_checkpoint(const std::string& path, const nn::ParameterList& params,
                               std::map<std::string, std::string> metadata, optim::AdamW* optimizer,
                               const TrainState& state);

// Loads every parameter by name (dtype and shape checked) from `f`; with an optimizer, its
// moments and step count (an error if the file holds none); with a state, the training state.
void load_parameter_checkpoint(const SafeTensors& f, const nn::ParameterList& params, optim::AdamW* optimizer,
                               TrainState* state);

// The metadata value under `key`; an error naming the file when it is absent.
const std::string& checkpoint_metadata(const SafeTensors& f, const std::string& key);

// The model type a checkpoint declares ("gpt" when it declares none: files written before the
// key existed) and the check that it is `expected`, which also refuses a packed low-bit model
// (io/low_bit_encoder.h) by name.
std::string checkpoint_model_type(const SafeTensors& f);
void expect_model_type(const SafeTensors& f, const std::string& expected);

}  // namespace gannet::io
