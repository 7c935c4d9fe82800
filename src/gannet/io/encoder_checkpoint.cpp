#include "gannet/io/encoder_checkpoint.h"

namespace gannet::io {

namespace {
// The stored tensors that fix the config's sizes, checked before a model is built from it.
void check_config_against_tensors(const SafeTensors& f, const models::EncoderConfig& c) {
  const std::string desc = encoder_config_to_json(c).dump();
  auto expect = [&](const std::string& name, const Shape& shape) {
    GANNET_CHECK(f.has(name), f.path(), ": encoder config ", desc, " needs tensor '", name, "', which is missing");
    const Tensor t = f.get(name);
    GANNET_CHECK(t.shape() == shape, f.path(), ": tensor '", name, "' is ", shape_str(t.shape()),
                 ", but encoder config ", desc, " needs ", shape_str(shape));
  };
  expect("wte.weight", {c.vocab_size, c.n_embd});
  expect("wpe.weight", {c.n_ctx, c.n_embd});
  expect("ln_f.weight", {c.n_embd});
  expect(str("h.", c.n_layer - 1, ".ln_1.weight"), {c.n_embd});
  const std::string beyond = str("h.", c.n_layer, ".ln_1.weight");
  GANNET_CHECK(!f.has(beyond), f.path(), ": holds tensor '", beyond, "', but encoder config ", desc, " has ",
               c.n_layer, " layers");
  if (c.mlm_head) expect("mlm.bias", {c.vocab_size});
  if (c.num_classes > 0) expect("classifier.bias", {c.num_classes});
}

models::EncoderConfig config_of(const SafeTensors& f) {
  expect_model_type(f, "encoder");
  const std::string& text = checkpoint_metadata(f, "model_config");
  models::EncoderConfig c =
      read_encoder_config(JsonReader(parse_json_text(text, f.path() + " model_config"), "model_config"));
  check_config_against_tensors(f, c);
  return c;
}

// The trunk's part of a config: what decides the trunk's parameters.
bool same_trunk(const models::EncoderConfig& a, const models::EncoderConfig& b) {
  return a.vocab_size == b.vocab_size && a.n_ctx == b.n_ctx && a.n_layer == b.n_layer && a.n_head == b.n_head &&
         a.n_embd == b.n_embd && a.layernorm_eps == b.layernorm_eps;
}
}  // namespace

models::EncoderConfig read_encoder_config(const JsonReader& r, const models::EncoderConfig& defaults) {
  models::EncoderConfig c = defaults;
  c.vocab_size = r.get_int("vocab_size", c.vocab_size);
  c.n_ctx = r.get_int("n_ctx", c.n_ctx);
  c.n_layer = r.get_int("n_layer", c.n_layer);
  c.n_head = r.get_int("n_head", c.n_head);
  c.n_embd = r.get_int("n_embd", c.n_embd);
  c.num_classes = r.get_int("num_classes", c.num_classes);
  c.mlm_head = r.get_bool("mlm_head", c.mlm_head);
  c.layernorm_eps = r.get_float("layernorm_eps", c.layernorm_eps, NumberRange::above(0));
  try {
    c.validate();
  } catch (const Error& e) {
    fail(str(r.context(), ": ", e.what()));
  }
  return c;
}

nlohmann::json encoder_config_to_json(const models::EncoderConfig& c) {
  return {{"vocab_size", c.vocab_size}, {"n_ctx", c.n_ctx},           {"n_layer", c.n_layer},
          {"n_head", c.n_head},         {"n_embd", c.n_embd},         {"num_classes", c.num_classes},
          {"mlm_head", c.mlm_head},     {"layernorm_eps", c.layernorm_eps}};
}

void save_encoder_checkpoint(const std::string& path, const models::Encoder& model, optim::AdamW* optimizer,
                             const TrainState& state) {
  save_parameter_checkpoint(path, model.parameters(),
                            {{"model_type", "encoder"}, {"model_config", encoder_config_to_json(model.config()).dump()}},
                            optimizer, state);
}

models::EncoderConfig read_encoder_checkpoint_config(const std::string& path) {
  return config_of(SafeTensors::open(path));
}

void load_encoder_checkpoint(const std::string& path, models::Encoder& model, optim::AdamW* optimizer,
                             TrainState* state) {
  SafeTensors f = SafeTensors::open(path);
  const models::EncoderConfig stored = config_of(f);
  GANNET_CHECK(stored == model.config(), path, ": checkpoint encoder config ", encoder_config_to_json(stored).dump(),
               " does not match the requested model ", encoder_config_to_json(model.config()).dump());
  load_parameter_checkpoint(f, model.parameters(), optimizer, state);
}

void load_encoder_trunk(const std::string& path, models::Encoder& model) {
  SafeTensors f = SafeTensors::open(path);
  const models::EncoderConfig stored = config_of(f);
  GANNET_CHECK(same_trunk(stored, model.config()), path, ": its encoder ", encoder_config_to_json(stored).dump(),
               " has another trunk than the requested model ", encoder_config_to_json(model.config()).dump());
  load_parameter_checkpoint(f, model.trunk_parameters(), nullptr, nullptr);
}

}  // namespace gannet::io
