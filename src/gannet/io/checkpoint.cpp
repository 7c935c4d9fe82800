#include "gannet/io/checkpoint.h"

#include "gannet/io/model_config.h"
#include "gannet/io/safetensors.h"
#include "gannet/io/sharded_checkpoint.h"

namespace gannet::io {

namespace {
// The stored tensors that fix the config's sizes: a model is built from a config only once they
// agree, so that metadata claiming n_layer 10^8 or n_embd 65536 over a small file fails here
// rather than after allocating the model. (Every tensor is checked again when the weights load.)
void check_config_against_tensors(const SafeTensors& f, const models::GptConfig& c) {
  const std::string desc = gpt_config_to_json(c).dump();
  auto expect = [&](const std::string& name, const Shape& shape) {
    GANNET_CHECK(f.has(name), f.path(), ": model config ", desc, " needs tensor '", name, "', which is missing");
    const Tensor t = f.get(name);
    GANNET_CHECK(t.shape() == shape, f.path(), ": tensor '", name, "' is ", shape_str(t.shape()), ", but model config ",
                 desc, " needs ", shape_str(shape));
  };
  expect("wpe.weight", {c.n_ctx, c.n_embd});
  expect("ln_f.weight", {c.n_embd});
  expect(str("h.", c.n_layer - 1, ".ln_1.weight"), {c.n_embd});
  const std::string beyond = str("h.", c.n_layer, ".ln_1.weight");
  GANNET_CHECK(!f.has(beyond), f.path(), ": holds tensor '", beyond, "', but model config ", desc, " has ", c.n_layer,
               " layers");
}

models::GptConfig config_of(const SafeTensors& f) {
  expect_model_type(f, "gpt");
  const std::string& text = checkpoint_metadata(f, "model_config");
  models::GptConfig c = read_gpt_config(JsonReader(parse_json_text(text, f.path() + " model_config"), "model_config"));
  check_config_against_tensors(f, c);
  return c;
}
}  // namespace

void save_checkpoint(const std::string& path, const models::Gpt& model, optim::AdamW* optimizer,
                     const TrainState& state) {
  save_parameter_checkpoint(path, model.parameters(), {{"model_type", "gpt"}, {"model_config", gpt_config_to_json(model.config()).dump()}},
                            optimizer, state);
}

models::GptConfig read_checkpoint_config(const std::string& path) {
  if (is_sharded_checkpoint(path)) return read_manifest(path).model;
  return config_of(SafeTensors::open(path));
}

namespace {
// The same from a sharded checkpoint: its tensors reassembled whole.
void load_sharded(const std::string& path, models::Gpt& model, optim::AdamW* optimizer, TrainState* state) {
  const std::string mp = manifest_path(path);
  ShardedCheckpoint ck = read_sharded_checkpoint(
      mp, [&](const std::string& name) { return optimizer || !name.starts_with("optim."); });
  const Manifest& m = ck.manifest;
  GANNET_CHECK(m.model == model.config(), mp, ": checkpoint model config ", gpt_config_to_json(m.model).dump(),
               " does not match the requested model ", gpt_config_to_json(model.config()).dump());
  auto take = [&](const std::string& name, Tensor& into) {
    auto it = ck.tensors.find(name);
    GANNET_CHECK(it != ck.tensors.end(), mp, ": holds no tensor '", name, "'");
    GANNET_CHECK(it->second.shape() == into.shape(), mp, ": tensor '", name, "' is ", it->second.describe(),
                 ", the model needs ", into.describe());
    into.copy_from(it->second);
  };
  const auto& params = model.parameters();
  for (const auto& p : params) take(p.name, p.var.value());
  if (optimizer) {
    GANNET_CHECK(m.optim_step >= 0, mp, ": holds no optimizer state (a model file, not a training checkpoint)");
    for (size_t i = 0; i < params.size(); ++i) {
      take("optim.m." + params[i].name, optimizer->first_moments()[i]);
      take("optim.v." + params[i].name, optimizer->second_moments()[i]);
    }
    optimizer->set_step_count(m.optim_step);
  }
  if (state) *state = m.state;
}
}  // namespace

void load_checkpoint(const std::string& path, models::Gpt& model, optim::AdamW* optimizer, TrainState* state) {
  if (is_sharded_checkpoint(path)) return load_sharded(path, model, optimizer, state);
  SafeTensors f = SafeTensors::open(path);
  models::GptConfig stored = config_of(f);
  GANNET_CHECK(stored == model.config(), path, ": checkpoint model config ", gpt_config_to_json(stored).dump(),
               " does not match the requested model ", gpt_config_to_json(model.config()).dump());
  load_parameter_checkpoint(f, model.parameters(), optimizer, state);
}

}  // namespace gannet::io
