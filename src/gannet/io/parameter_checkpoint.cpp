#include "gannet/io/parameter_checkpoint.h"

#include "gannet/core/escape.h"
#include "gannet/core/parse_number.h"
#include "gannet/io/low_bit_file.h"
#include "gannet/io/nm_sparse_encoder.h"

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

}  // namespace

const std::string& checkpoint_metadata(const SafeTensors& f, const std::string& key) {
  auto it = f.metadata().find(key);
  GANNET_CHECK(it != f.metadata().end(), f.path(), ": not a gannet checkpoint (no '", key, "' in its metadata)");
  return it->second;
}

std::string checkpoint_model_type(const SafeTensors& f) {
  auto it = f.metadata().find("model_type");
  return it == f.metadata().end() ? "gpt" : it->second;
}

void expect_model_type(const SafeTensors& f, const std::string& expected) {
  GANNET_CHECK(!holds_low_bit_weights(f), f.path(),
               ": is a packed low-bit model (gannet-lowbit-1), not a gannet checkpoint (gannet eval runs it)");
  GANNET_CHECK(!holds_nm_sparse_weights(f), f.path(),
               ": is a packed N:M sparse model (gannet-nmsparse-1), not a gannet checkpoint (gannet eval runs it)");
  const std::string type = checkpoint_model_type(f);
  GANNET_CHECK(type == expected, f.path(), ": holds a model of type ", quote_text(type), ", not ",
               quote_text(expected));
}

void save_parameter_checkpoint(const std::string& path, const nn::ParameterList& params,
                               std::map<std::string, std::string> metadata, optim::AdamW* optimizer,
                               const TrainState& state) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& p : params) tensors.emplace_back(p.name, p.var.value());
  metadata["format"] = kFormat;
  metadata["step"] = std::to_string(state.step);
  metadata["rng"] = rng_to_string(state.rng);
  if (!state.train_config.empty()) metadata["train_config"] = state.train_config;
  for (const auto& [name, t] : state.task_tensors) tensors.emplace_back("task." + name, t);
  if (optimizer) {
    for (size_t i = 0; i < params.size(); ++i) {
      tensors.emplace_back("optim.m." + params[i].name, optimizer->first_moments()[i]);
      tensors.emplace_back("optim.v." + params[i].name, optimizer->second_moments()[i]);
    }
    metadata["optim_step"] = std::to_string(optimizer->step_count());
  }
  save_safetensors(path, tensors, metadata);
}

void load_parameter_checkpoint(const SafeTensors& f, const nn::ParameterList& params, optim::AdamW* optimizer,
                               TrainState* state) {
  const std::string& path = f.path();
  for (const auto& p : params) p.var.value().copy_from(f.get(p.name, DType::f32, p.var.shape()));
  if (optimizer) {
    GANNET_CHECK(f.metadata().count("optim_step"), path,
                 ": holds no optimizer state (a model file, not a training checkpoint)");
    for (size_t i = 0; i < params.size(); ++i) {
      optimizer->first_moments()[i].copy_from(f.get("optim.m." + params[i].name, DType::f32, params[i].var.shape()));
      optimizer->second_moments()[i].copy_from(f.get("optim.v." + params[i].name, DType::f32, params[i].var.shape()));
    }
    optimizer->set_step_count(count_from_string(checkpoint_metadata(f, "optim_step"), "optim_step", path));
  }
  if (state) {
    state->step = count_from_string(checkpoint_metadata(f, "step"), "step", path);
    state->rng = rng_from_string(checkpoint_metadata(f, "rng"), path);
    auto it = f.metadata().find("train_config");
    state->train_config = it == f.metadata().end() ? "" : it->second;
    for (auto& [name, t] : state->task_tensors) {
      GANNET_CHECK(f.has("task." + name), path, ": holds no task state 'task.", name,
                   "' (a checkpoint of another task or method)");
      t.copy_from(f.get("task." + name, DType::f32, t.shape()));
    }
  }
}

}  // namespace gannet::io
