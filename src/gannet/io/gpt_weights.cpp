#include "gannet/io/gpt_weights.h"

#include <filesystem>

#include "gannet/io/checkpoint.h"
#include "gannet/io/hf_gpt2.h"
#include "gannet/io/model_config.h"
#include "gannet/io/safetensors.h"

namespace gannet::io {

const Tensor& GptWeights::at(const std::string& name, const Shape& shape) const {
  auto it = tensors.find(name);
  GANNET_CHECK(it != tensors.end(), "gpt weights: no tensor '", name, "'");
  const Tensor& t = it->second;
  GANNET_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::bf16, "gpt weights: tensor '", name, "' is ",
               t.describe(), ", expected f32 or bf16");
  check_shape(t, shape, "gpt weights: tensor '" + name + "'");
  return t;
}

std::vector<std::pair<std::string, Shape>> gpt_weight_shapes(const models::GptConfig& c) {
  const int64_t C = c.n_embd;
  std::vector<std::pair<std::string, Shape>> shapes = {{"wte.weight", {c.vocab_size, C}},
                                                       {"wpe.weight", {c.n_ctx, C}}};
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string h = "h." + std::to_string(i) + ".";
    shapes.push_back({h + "ln_1.weight", {C}});
    shapes.push_back({h + "ln_1.bias", {C}});
    shapes.push_back({h + "attn.c_attn.weight", {3 * C, C}});
    shapes.push_back({h + "attn.c_attn.bias", {3 * C}});
    shapes.push_back({h + "attn.c_proj.weight", {C, C}});
    shapes.push_back({h + "attn.c_proj.bias", {C}});
    shapes.push_back({h + "ln_2.weight", {C}});
    shapes.push_back({h + "ln_2.bias", {C}});
    shapes.push_back({h + "mlp.c_fc.weight", {4 * C, C}});
    shapes.push_back({h + "mlp.c_fc.bias", {4 * C}});
    shapes.push_back({h + "mlp.c_proj.weight", {C, 4 * C}});
    shapes.push_back({h + "mlp.c_proj.bias", {C}});
  }
  shapes.push_back({"ln_f.weight", {C}});
  shapes.push_back({"ln_f.bias", {C}});
  return shapes;
}

namespace {

// A gannet model or checkpoint file: the parameters as stored (f32 or bf16, sharing the mapping).
GptWeights read_gannet_weights(const std::string& path) {
  GptWeights w;
  w.config = read_checkpoint_config(path);
  try {
    w.config.validate();
  } catch (const Error& e) {
    fail(str(path, ": ", e.what()));
  }
  SafeTensors file = SafeTensors::open(path);
  const auto shapes = gpt_weight_shapes(w.config);
  for (const auto& [name, shape] : shapes) {
    GANNET_CHECK(file.has(name), path, ": tensor '", name, "' is missing (model config ",
                 gpt_config_to_json(w.config).dump(), ")");
    Tensor t = file.get(name);
    GANNET_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::bf16, path, ": tensor '", name, "' is ",
                 t.describe(), ", expected f32 or bf16");
    check_shape(t, shape, path + ": tensor '" + name + "'");
    w.tensors.emplace(name, std::move(t));
  }
  for (const std::string& name : file.names()) {
    GANNET_CHECK(w.tensors.count(name) || name.starts_with("optim."), path, ": unknown tensor '", name,
                 "' (not a weight of a GPT with model config ", gpt_config_to_json(w.config).dump(), ")");
  }
  return w;
}

}  // namespace

GptWeights read_gpt_weights(const std::string& path) {
  std::error_code ec;
  GANNET_CHECK(std::filesystem::exists(path, ec), "cannot read GPT weights ", path, ": no such file or directory");
  if (std::filesystem::is_directory(path, ec)) return import_hf_gpt2(path);
  return read_gannet_weights(path);
}

void load_gpt_weights(const GptWeights& weights, models::Gpt& model) {
  GANNET_CHECK(weights.config == model.config(), "load gpt weights: the weights' model config ",
               gpt_config_to_json(weights.config).dump(), " does not match the model's ",
               gpt_config_to_json(model.config()).dump());
  for (const auto& p : model.parameters()) {
    const Tensor& src = weights.at(p.name, p.var.shape());
    p.var.value().copy_from(as_f32(src));
  }
}

}  // namespace gannet::io
