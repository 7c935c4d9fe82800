// VL-MoE checkpoints (models/vlmoe.h): io/parameter_checkpoint.h's format with "model_type" "vlmoe"
// and the VlMoeConfig as JSON in "model_config". Also the "model" block of a vlmoe training config.
#pragma once
#include <nlohmann/json.hpp>

#include "gannet/io/json_config.h"
#include "gannet/io/parameter_checkpoint.h"
#include "gannet/models/vlmoe.h"

namespace gannet::io {

// The keys of VlMoeConfig over `defaults`: image_size, patch_size, text_ctx, n_layer, n_vl_layer,
// n_head, n_embd, proj_dim, layernorm_eps, dense, itm_head, mlm_head and mim_head (each absent in
// older checkpoints: false) and the moe block (io/model_config.h's MoE keys); vocab_size only when `with_vocab_size`, as a
// checkpoint stores it (a training config takes it from the tokenizer its data builds). Unknown keys
// are left for the caller's finish(). Not validated.
models::VlMoeConfig read_vlmoe_config(const JsonReader& r, const models::VlMoeConfig& defaults, bool with_vocab_size);
nlohmann::json vlmoe_config_to_json(const models::VlMoeConfig& c);

void save_vlmoe_checkpoint(const std::string& path, const models::VlMoe& model, optim::AdamW* optimizer,
                           const TrainState& state);
// The config stored in a VL-MoE checkpoint, validated.
models::VlMoeConfig read_vlmoe_checkpoint_config(const std::string& path);
// Loads weights into `model`, whose config must equal the file's; with an optimizer, its moments.
void load_vlmoe_checkpoint(const std::string& path, models::VlMoe& model, optim::AdamW* optimizer, TrainState* state);

}  // namespace gannet::io
