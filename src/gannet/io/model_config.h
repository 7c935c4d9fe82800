// Model configs to and from JSON (the "model" block of a training config, and the metadata of
// checkpoints).
#pragma once
#include <nlohmann/json.hpp>

#include "gannet/io/json_config.h"
#include "gannet/models/gpt.h"

namespace gannet::io {

// Reads an MoE block ("model.moe": DeepSpeed's MoE option names, see nn/moe.h).
nn::MoeConfig read_moe_config(const JsonReader& r);
nlohmann::json moe_config_to_json(const nn::MoeConfig& c);
// Reads the keys of GptConfig (unknown keys are left for the caller's finish()).
models::GptConfig read_gpt_config(const JsonReader& r);
nlohmann::json gpt_config_to_json(const models::GptConfig& c);

}  // namespace gannet::io
