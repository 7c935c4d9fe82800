#include "gannet/io/vlmoe_checkpoint.h"

#include "gannet/io/model_config.h"

namespace gannet::io {

namespace {
models::VlMoeConfig config_of(const SafeTensors& f) {
  expect_model_type(f, "vlmoe");
  const std::string& text = checkpoint_metadata(f, "model_config");
  const JsonReader r(parse_json_text(text, f.path() + " model_config"), "model_config");
  models::VlMoeConfig c = read_vlmoe_config(r, {}, true);
  r.finish();
  try {
    c.validate();
  } catch (const Error& e) {
    fail(str(f.path(), ": model_config: ", e.what()));
  }
  return c;
}
}  // namespace

models::VlMoeConfig read_vlmoe_config(const JsonReader& r, const models::VlMoeConfig& defaults, bool with_vocab_size) {
  models::VlMoeConfig c = defaults;
  c.image_size = r.get_int("image_size", c.image_size, 1, 1 << 12);
  c.patch_size = r.get_int("patch_size", c.patch_size, 1, 1 << 12);
  if (with_vocab_size) c.vocab_size = r.get_int("vocab_size", c.vocab_size, 1);
  else
    GANNET_CHECK(!r.has("vocab_size"), r.context(), ": vocab_size follows from the tokenizer of the data; remove it");
  c.text_ctx = r.get_int("text_ctx", c.text_ctx, 2);
  c.n_layer = r.get_int("n_layer", c.n_layer, 1);
  c.n_vl_layer = r.get_int("n_vl_layer", c.n_vl_layer, 0);
  c.n_head = r.get_int("n_head", c.n_head, 1);
  c.n_embd = r.get_int("n_embd", c.n_embd, 1);
  c.proj_dim = r.get_int("proj_dim", c.proj_dim, 1);
  c.layernorm_eps = r.get_float("layernorm_eps", c.layernorm_eps, NumberRange::above(0));
  c.dense = r.get_bool("dense", c.dense);
  c.itm_head = r.get_bool("itm_head", c.itm_head);
  c.mlm_head = r.get_bool("mlm_head", c.mlm_head);
  c.mim_head = r.get_bool("mim_head", c.mim_head);
  if (r.has("moe")) {
    const JsonReader moe = r.child("moe");
    c.moe = read_moe_config(moe);
    // read_moe_config starts from the GPT's Megatron default (every other block); VL-MoE's is every
    // lower block (VlMoeConfig::default_moe), unless the block says otherwise.
    if (!moe.has("expert_interval") && !moe.has("layers")) c.moe.expert_interval = 1;
  }
  return c;
}

nlohmann::json vlmoe_config_to_json(const models::VlMoeConfig& c) {
  return {{"image_size", c.image_size}, {"patch_size", c.patch_size}, {"vocab_size", c.vocab_size},
          {"text_ctx", c.text_ctx},     {"n_layer", c.n_layer},       {"n_vl_layer", c.n_vl_layer},
          {"n_head", c.n_head},         {"n_embd", c.n_embd},         {"proj_dim", c.proj_dim},
          {"layernorm_eps", c.layernorm_eps}, {"dense", c.dense},     {"itm_head", c.itm_head},
          {"mlm_head", c.mlm_head},     {"mim_head", c.mim_head},     {"moe", moe_config_to_json(c.moe)}};
}

void save_vlmoe_checkpoint(const std::string& path, const models::VlMoe& model, optim::AdamW* optimizer,
                           const TrainState& state) {
  save_parameter_checkpoint(path, model.parameters(),
                            {{"model_type", "vlmoe"}, {"model_config", vlmoe_config_to_json(model.config()).dump()}},
                            optimizer, state);
}

models::VlMoeConfig read_vlmoe_checkpoint_config(const std::string& path) { return config_of(SafeTensors::open(path)); }

void load_vlmoe_checkpoint(const std::string& path, models::VlMoe& model, optim::AdamW* optimizer, TrainState* state) {
  SafeTensors f = SafeTensors::open(path);
  // VlMoeConfig has no operator==: the JSON forms hold every field.
  const std::string stored = vlmoe_config_to_json(config_of(f)).dump(), want = vlmoe_config_to_json(model.config()).dump();
  GANNET_CHECK(stored == want, path, ": checkpoint vlmoe config ", stored, " does not match the requested model ", want);
  load_parameter_checkpoint(f, model.parameters(), optimizer, state);
}

}  // namespace gannet::io
