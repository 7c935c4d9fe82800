#include "gannet/io/gpt_weights.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>

#include "gannet/core/checked_math.h"
#include "gannet/core/escape.h"
#include "gannet/io/checkpoint.h"
#include "gannet/io/sharded_checkpoint.h"
#include "gannet/io/hf_gpt2.h"
#include "gannet/io/model_config.h"
#include "gannet/io/safetensors.h"

namespace gannet::io {

const Tensor& GptWeights::at(const std::string& name, const Shape& shape) const {
  auto it = tensors.find(name);
  GANNET_CHECK(it != tensors.end() || !quantized.count(name), "gpt weights: tensor '", name,
               "' is quantized (", scheme, "); this path needs it in f32 or bf16");
  GANNET_CHECK(it != tensors.end(), "gpt weights: no tensor '", name, "'");
  const Tensor& t = it->second;
  GANNET_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::bf16, "gpt weights: tensor '", name, "' is ",
               t.describe(), ", expected f32 or bf16");
  check_shape(t, shape, "gpt weights: tensor '" + name + "'");
  return t;
}

const QuantizedTensor* GptWeights::find_quantized(const std::string& name, const Shape& shape) const {
  auto it = quantized.find(name);
  if (it == quantized.end()) return nullptr;
  const QuantizedTensor& q = it->second;
  // [E, out, in] (an MoE expert tensor) is stored as the matrix [E * out, in].
  const bool fits = (shape.size() == 2 && q.rows == shape[0] && q.in == shape[1]) ||
                    (shape.size() == 3 && q.rows == shape[0] * shape[1] && q.in == shape[2]);
  GANNET_CHECK(fits, "gpt weights: quantized tensor '", name, "' is [", q.rows, ", ", q.in, "], expected ",
               shape_str(shape), shape.size() == 3 ? str(" (stored as [", shape[0] * shape[1], ", ", shape[2], "])")
                                                   : std::string());
  return &q;
}

Tensor GptWeights::dense(const std::string& name, const Shape& shape) const {
  if (const QuantizedTensor* q = find_quantized(name, shape)) return q->dequantize().view(shape);
  return as_f32(at(name, shape));
}

ActivationQuant GptWeights::activation(const std::string& weight_name) const {
  auto it = activations.find(weight_name);
  return it == activations.end() ? ActivationQuant{} : it->second;
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
    const int64_t E = c.moe.experts_at(i, c.n_layer);
    if (E == 0 || c.moe.use_residual) {
      shapes.push_back({h + "mlp.c_fc.weight", {4 * C, C}});
      shapes.push_back({h + "mlp.c_fc.bias", {4 * C}});
      shapes.push_back({h + "mlp.c_proj.weight", {C, 4 * C}});
      shapes.push_back({h + "mlp.c_proj.bias", {C}});
    }
    if (E > 0) {
      shapes.push_back({h + "moe.gate.weight", {E, C}});
      shapes.push_back({h + "moe.experts.c_fc.weight", {E, 4 * C, C}});
      shapes.push_back({h + "moe.experts.c_fc.bias", {E, 4 * C}});
      shapes.push_back({h + "moe.experts.c_proj.weight", {E, C, 4 * C}});
      shapes.push_back({h + "moe.experts.c_proj.bias", {E, C}});
      if (c.moe.use_residual) {
        shapes.push_back({h + "moe.coefficient.weight", {2, C}});
        shapes.push_back({h + "moe.coefficient.bias", {2}});
      }
    }
  }
  shapes.push_back({"ln_f.weight", {C}});
  shapes.push_back({"ln_f.bias", {C}});
  return shapes;
}

std::vector<std::pair<std::string, Shape>> quantizable_weight_shapes(const models::GptConfig& c) {
  const int64_t C = c.n_embd;
  std::vector<std::pair<std::string, Shape>> out = {{"wte.weight", {c.vocab_size, C}}};
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string h = "h." + std::to_string(i) + ".";
    out.push_back({h + "attn.c_attn.weight", {3 * C, C}});
    out.push_back({h + "attn.c_proj.weight", {C, C}});
    const int64_t E = c.moe.experts_at(i, c.n_layer);
    if (E == 0 || c.moe.use_residual) {
      out.push_back({h + "mlp.c_fc.weight", {4 * C, C}});
      out.push_back({h + "mlp.c_proj.weight", {C, 4 * C}});
    }
    if (E > 0) {
      out.push_back({h + "moe.experts.c_fc.weight", {E * 4 * C, C}});
      out.push_back({h + "moe.experts.c_proj.weight", {E * C, 4 * C}});
    }
  }
  out.push_back({"lm_head.weight", {c.vocab_size, C}});
  return out;
}

namespace {

constexpr const char* kQuantFormat = "gannet-quant-1";

// The "quantization" metadata of a file: scheme, notes, and per quantized weight its bits, group,
// widths, symmetry and input quantization.
nlohmann::json quantization_json(const GptWeights& w) {
  nlohmann::json weights = nlohmann::json::object();
  for (const auto& [name, q] : w.quantized) {
    const ActivationQuant a = w.activation(name);
    weights[name] = {{"bits", q.bits},       {"group", q.group},
                     {"in", q.in},           {"padded_in", q.padded_in},
                     {"symmetric", q.symmetric()},
                     {"activations", !a.quantized ? "f32" : a.bits == 4 ? "int4" : "int8"},
                     {"activation_scale", a.static_scale}};
    if (a.asymmetric) weights[name]["activation_asymmetric"] = true;
  }
  return {{"format", kQuantFormat}, {"scheme", w.scheme}, {"notes", w.quantization_notes}, {"weights", weights}};
}

// Reads the quantized weights a file's metadata lists; `shapes` gives each one's [rows, in].
void read_quantized(const SafeTensors& file, const std::string& text, const std::map<std::string, Shape>& shapes,
                    GptWeights& w) {
  const std::string& path = file.path();
  const nlohmann::json doc = parse_json_text(text, path + " quantization metadata");
  GANNET_CHECK(doc.is_object(), path, ": quantization metadata is not a JSON object");
  JsonReader r(doc, "quantization");
  const std::string format = r.get_string("format", "");
  GANNET_CHECK(format == kQuantFormat, path, ": quantization format '", escape_bytes(format), "' is not supported (",
               kQuantFormat, ")");
  w.scheme = r.get_string("scheme", "");
  w.quantization_notes = r.get_string("notes", "");
  GANNET_CHECK(r.has("weights"), path, ": quantization metadata lists no weights");
  const nlohmann::json& list = doc.at("weights");
  GANNET_CHECK(list.is_object(), path, ": quantization metadata 'weights' is not an object");
  JsonReader weights = r.child("weights");
  for (auto it = list.begin(); it != list.end(); ++it) {
    const std::string& name = it.key();
    auto shape = shapes.find(name);
    GANNET_CHECK(shape != shapes.end(), path, ": quantized tensor '", escape_bytes(name),
                 "' is not a weight matrix this model may store quantized");
    JsonReader e = weights.child(name);
    QuantizedTensor q;
    const int64_t bits = e.get_int<int64_t>("bits", 0);  // checked before the narrowing: 2^32 + 8 is not 8
    GANNET_CHECK(bits == 8 || bits == 4, path, ": quantized tensor '", escape_bytes(name), "' has ", bits,
                 " bits (8 or 4)");
    q.bits = (int)bits;
    q.group = e.get_int<int64_t>("group", 0, 0);
    q.in = e.get_int<int64_t>("in", 0, 0);
    q.padded_in = e.get_int<int64_t>("padded_in", 0, 0);
    q.rows = shape->second[0];
    const bool symmetric = e.get_bool("symmetric", true);
    const std::string act = e.get_string("activations", "f32");
    GANNET_CHECK(act == "f32" || act == "int8" || act == "int4", path, ": '", escape_bytes(name),
                 "' has activations '", escape_bytes(act), "' (f32, int8, int4)");
    const bool act_asym = e.get_bool("activation_asymmetric", false);
    GANNET_CHECK(!act_asym || act == "int4", path, ": '", escape_bytes(name),
                 "' has asymmetric activations that are not int4");
    // Checked as the float it is used as: 1e39 is a finite double but an infinite float.
    const double act_scale_read = e.get_double("activation_scale", 0.0, NumberRange::any());
    const std::optional<float> act_scale = to_finite_float(act_scale_read);
    GANNET_CHECK(act_scale && *act_scale >= 0.f && (act_scale_read == 0.0 || *act_scale > 0.f), path, ": '", name,
                 "' has activation_scale ", act_scale_read, " (expected 0 or a positive float up to ",
                 std::numeric_limits<float>::max(), ")");
    GANNET_CHECK(q.in == shape->second[1], path, ": quantized tensor '", name, "' has input width ", q.in,
                 ", the model needs ", shape->second[1]);
    auto part = [&](const std::string& suffix) {
      GANNET_CHECK(file.has(name + suffix), path, ": tensor '", name + suffix, "' is missing");
      return file.get(name + suffix);
    };
    q.q = part(".q");
    q.scale = part(".scale");
    if (!symmetric) q.zero = part(".zero");
    GANNET_CHECK(symmetric || file.has(name + ".zero"), path, ": '", name, "' is asymmetric without zero points");
    GANNET_CHECK(!symmetric || !file.has(name + ".zero"), path, ": '", name, "' is symmetric but has zero points");
    q.validate(path + ": quantized tensor '" + name + "'");
    w.quantized.emplace(name, std::move(q));
    if (act != "f32") w.activations[name] = ActivationQuant{true, *act_scale, act == "int4" ? 4 : 8, act_asym};
    GANNET_CHECK(!(act_asym && *act_scale > 0.f), path, ": '", escape_bytes(name),
                 "' has asymmetric activations with a static scale (they are token-wise)");
  }
  r.finish();
}

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
  if (auto it = file.metadata().find("quantization"); it != file.metadata().end()) {
    std::map<std::string, Shape> matrices;
    for (const auto& [name, shape] : quantizable_weight_shapes(w.config)) matrices.emplace(name, shape);
    read_quantized(file, it->second, matrices, w);
  }
  for (const auto& [name, shape] : shapes) {
    if (w.quantized.count(name)) continue;
    GANNET_CHECK(file.has(name), path, ": tensor '", name, "' is missing (model config ",
                 gpt_config_to_json(w.config).dump(), ")");
    Tensor t = file.get(name);
    GANNET_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::bf16, path, ": tensor '", name, "' is ",
                 t.describe(), ", expected f32 or bf16");
    check_shape(t, shape, path + ": tensor '" + name + "'");
    w.tensors.emplace(name, std::move(t));
  }
  auto quantized_part = [&](const std::string& name) {
    for (const char* suffix : {".q", ".scale", ".zero"})
      if (name.ends_with(suffix) && w.quantized.count(name.substr(0, name.size() - std::strlen(suffix)))) return true;
    return false;
  };
  for (const std::string& name : file.names()) {
    GANNET_CHECK(w.tensors.count(name) || quantized_part(name) || name.starts_with("optim."), path,
                 ": unknown tensor '", escape_bytes(name),
                 "' (not a weight of a GPT with model config ", gpt_config_to_json(w.config).dump(), ")");
  }
  return w;
}

// A sharded training checkpoint: its weights reassembled whole, the optimizer moments left unread.
GptWeights read_sharded_weights(const std::string& path) {
  ShardedCheckpoint ck = read_sharded_checkpoint(path, [](const std::string& name) { return !name.starts_with("optim."); });
  const std::string mp = manifest_path(path);
  GptWeights w;
  w.config = ck.manifest.model;
  for (const auto& [name, shape] : gpt_weight_shapes(w.config)) {
    auto it = ck.tensors.find(name);
    GANNET_CHECK(it != ck.tensors.end(), mp, ": tensor '", name, "' is missing (model config ",
                 gpt_config_to_json(w.config).dump(), ")");
    check_shape(it->second, shape, mp + ": tensor '" + name + "'");
    w.tensors.emplace(name, std::move(it->second));
    ck.tensors.erase(it);
  }
  GANNET_CHECK(ck.tensors.empty(), mp, ": unknown tensor '",
               escape_bytes(ck.tensors.empty() ? "" : ck.tensors.begin()->first),
               "' (not a weight of a GPT with model config ", gpt_config_to_json(w.config).dump(), ")");
  return w;
}

}  // namespace

GptWeights read_gpt_weights(const std::string& path) {
  std::error_code ec;
  GANNET_CHECK(std::filesystem::exists(path, ec), "cannot read GPT weights ", path, ": no such file or directory");
  if (is_sharded_checkpoint(path)) return read_sharded_weights(path);
  if (std::filesystem::is_directory(path, ec)) return import_hf_gpt2(path);
  return read_gannet_weights(path);
}

void write_gpt_weights(const std::string& path, const GptWeights& w) {
  w.config.validate();
  std::vector<std::pair<std::string, Tensor>> entries;
  for (const auto& [name, shape] : gpt_weight_shapes(w.config)) {
    if (const QuantizedTensor* q = w.find_quantized(name, shape)) q->append_entries(name, entries);
    else entries.emplace_back(name, w.at(name, shape));
  }
  if (const QuantizedTensor* head = w.find_quantized("lm_head.weight", {w.config.vocab_size, w.config.n_embd}))
    head->append_entries("lm_head.weight", entries);
  std::map<std::string, std::string> metadata = {{"format", "gannet-checkpoint-1"},
                                                 {"model_config", gpt_config_to_json(w.config).dump()},
                                                 {"step", "0"},
                                                 {"rng", "0,0,0,0"}};
  if (w.is_quantized()) metadata["quantization"] = quantization_json(w).dump();
  save_safetensors(path, entries, metadata);
}

void load_gpt_weights(const GptWeights& weights, models::Gpt& model) {
  GANNET_CHECK(weights.config == model.config(), "load gpt weights: the weights' model config ",
               gpt_config_to_json(weights.config).dump(), " does not match the model's ",
               gpt_config_to_json(model.config()).dump());
  for (const auto& p : model.parameters()) {
    p.var.value().copy_from(weights.dense(p.name, p.var.shape()));
  }
}

}  // namespace gannet::io
