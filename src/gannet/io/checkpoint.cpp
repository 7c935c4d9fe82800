#include "gannet/io/checkpoint.h"


#include "gannet/core/escape.h"
#include "gannet/core/parse_number.h"
#include "gannet/io/model_config.h"
#include "gannet/io/safetensors.h"
#include "gannet/io/sharded_checkpoint.h"

namespace gannet::io {

namespace {
constexpr const char* kFormat = "gannet-checkpoint-1";

std::string rng_to_string(const std::array<uint64_t, 4>& s) {
  return str(s[0], ",", s[1], ",", s[2], ",", s[3]);
}

std::array<uint64_t, 4> rng_from_string(const std::string& text, const std::string& path) {
  std::array<uint64_t, 4> s{};
  std::string_view rest = text;
  for (int i = 0; i < 4; ++i) {
    const size_t comma = i < 3 ? rest.find(',') : std::string_view::npos;
    GANNET_CHECK(i == 3 || comma != std::string_view::npos, path, ": checkpoint metadata 'rng' is not 4 integers: ",
                 quote_text(text));
    s[i] = parse_uint64(rest.substr(0, comma), path + ": checkpoint metadata 'rng'");
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
  return s;
}

// A count stored as text in the metadata (step, optim_step): an integer >= 0.
int64_t count_from_string(const std::string& text, const std::string& key, const std::string& path) {
  const int64_t v = parse_int64(text, path + ": checkpoint metadata '" + key + "'");
  GANNET_CHECK(v >= 0, path, ": checkpoint metadata '", key, "' must be >= 0, got ", v);
  return v;
}

const std::string& meta(const SafeTensors& f, const std::string& key) {
  auto it = f.metadata().find(key);
  GANNET_CHECK(it != f.metadata().end(), f.path(), ": not a gannet checkpoint (no '", key, "' in its metadata)");
  return it->second;
}

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
  const std::string& text = meta(f, "model_config");
  models::GptConfig c = read_gpt_config(JsonReader(parse_json_text(text, f.path() + " model_config"), "model_config"));
  check_config_against_tensors(f, c);
  return c;
}
}  // namespace

void save_checkpoint(const std::string& path, const models::Gpt& model, optim::AdamW* optimizer,
                     const TrainState& state) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  const auto& params = model.parameters();
  for (const auto& p : params) tensors.emplace_back(p.name, p.var.value());
  std::map<std::string, std::string> metadata = {
      {"format", kFormat},
      {"model_config", gpt_config_to_json(model.config()).dump()},
      {"step", std::to_string(state.step)},
      {"rng", rng_to_string(state.rng)},
  };
  if (!state.train_config.empty()) metadata["train_config"] = state.train_config;
  if (optimizer) {
    for (size_t i = 0; i < params.size(); ++i) {
      tensors.emplace_back("optim.m." + params[i].name, optimizer->first_moments()[i]);
      tensors.emplace_back("optim.v." + params[i].name, optimizer->second_moments()[i]);
    }
    metadata["optim_step"] = std::to_string(optimizer->step_count());
  }
  save_safetensors(path, tensors, metadata);
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
  const auto& params = model.parameters();
  for (const auto& p : params) {
    Tensor t = f.get(p.name, DType::f32, p.var.shape());
    p.var.value().copy_from(t);
  }
  if (optimizer) {
    GANNET_CHECK(f.metadata().count("optim_step"), path, ": holds no optimizer state (a model file, not a training checkpoint)");
    for (size_t i = 0; i < params.size(); ++i) {
      optimizer->first_moments()[i].copy_from(f.get("optim.m." + params[i].name, DType::f32, params[i].var.shape()));
      optimizer->second_moments()[i].copy_from(f.get("optim.v." + params[i].name, DType::f32, params[i].var.shape()));
    }
    optimizer->set_step_count(count_from_string(meta(f, "optim_step"), "optim_step", path));
  }
  if (state) {
    state->step = count_from_string(meta(f, "step"), "step", path);
    state->rng = rng_from_string(meta(f, "rng"), path);
    auto it = f.metadata().find("train_config");
    state->train_config = it == f.metadata().end() ? "" : it->second;
  }
}

}  // namespace gannet::io
