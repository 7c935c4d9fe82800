#include "gannet/io/hf_gpt2.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "gannet/core/escape.h"
#include "gannet/io/json_config.h"
#include "gannet/io/model_config.h"
#include "gannet/io/safetensors.h"

namespace gannet::io {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kPrefix = "transformer.";

// config.json as HF's GPT2Config reads it (its defaults where a key is absent). Settings that
// would change the math gannet computes are rejected rather than ignored.
models::GptConfig read_hf_config(const std::string& path) {
  nlohmann::json j = parse_json_file(path);
  GANNET_CHECK(j.is_object(), path, ": expected a JSON object");
  models::GptConfig c;
  try {
    JsonReader r(j, "", JsonNulls::as_absent);  // HF writes null for "the default" (n_inner)
    const std::string type = r.get_string("model_type", "gpt2");
    GANNET_CHECK(type == "gpt2", "model_type '", type, "' is not GPT-2");
    c.n_embd = r.get_int<int64_t>("n_embd", 768, 1);
    c.n_head = r.get_int<int64_t>("n_head", 12, 1);
    c.n_layer = r.get_int<int64_t>("n_layer", 12, 1);
    c.vocab_size = r.get_int<int64_t>("vocab_size", 50257, 1);
    c.n_ctx = r.has("n_positions") ? r.get_int<int64_t>("n_positions", 1024, 1) : r.get_int<int64_t>("n_ctx", 1024, 1);
    c.layernorm_eps = r.get_float("layer_norm_epsilon", 1e-5f, NumberRange::above(0));
    c.validate();  // sizes within limits before any arithmetic on them (4 * n_embd below)
    const std::string act = r.get_string("activation_function", "gelu_new");
    GANNET_CHECK(act == "gelu_new" || act == "gelu_pytorch_tanh", "activation_function '", act,
                 "' is not supported (gannet computes the tanh GELU: gelu_new or gelu_pytorch_tanh)");
    if (r.has("n_inner")) {
      const int64_t inner = r.get_int<int64_t>("n_inner", 4 * c.n_embd);
      GANNET_CHECK(inner == 4 * c.n_embd, "n_inner ", inner, " is not supported (gannet's MLP is 4 * n_embd = ",
                   4 * c.n_embd, ")");
    }
    GANNET_CHECK(r.get_bool("scale_attn_weights", true), "scale_attn_weights false is not supported");
    GANNET_CHECK(!r.get_bool("scale_attn_by_inverse_layer_idx", false),
                 "scale_attn_by_inverse_layer_idx true is not supported");
    GANNET_CHECK(!r.get_bool("add_cross_attention", false), "add_cross_attention true is not supported");
    GANNET_CHECK(r.get_bool("tie_word_embeddings", true),
                 "tie_word_embeddings false is not supported (gannet's LM head is the token embedding)");
  } catch (const Error& e) {
    fail(str(path, ": ", e.what()));
  }
  return c;
}

// HF's Conv1D layers (weights stored [in, out]).
bool is_conv1d_weight(const std::string& name) {
  return name.ends_with(".c_attn.weight") || name.ends_with(".c_proj.weight") || name.ends_with(".c_fc.weight");
}

// The causal-mask buffers older GPT-2 files carry: h.{i}.attn.bias and h.{i}.attn.masked_bias.
bool is_mask_buffer(const std::string& name) {
  return name.starts_with("h.") && (name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias"));
}

// The tensor as f32 (shared with the file when it is f32 already).
Tensor to_f32(const Tensor& t, const std::string& file, const std::string& name) {
  if (t.dtype() == DType::f32) return t;
  GANNET_CHECK(t.dtype() == DType::f16 || t.dtype() == DType::bf16, file, ": tensor '", name, "' is ", t.describe(),
               ", expected F32, F16 or BF16");
  return as_f32(t);
}

// [rows, cols] -> [cols, rows], in cache-sized tiles.
Tensor transpose(const Tensor& t) {
  const int64_t rows = t.dim(0), cols = t.dim(1);
  Tensor out = Tensor::empty({cols, rows});
  const float* in = t.f32();
  float* o = out.f32();
  constexpr int64_t kTile = 32;
  for (int64_t r0 = 0; r0 < rows; r0 += kTile) {
    for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
      const int64_t r1 = std::min(rows, r0 + kTile), c1 = std::min(cols, c0 + kTile);
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) o[c * rows + r] = in[r * cols + c];
    }
  }
  return out;
}

}  // namespace

bool is_hf_gpt2_dir(const std::string& path) {
  std::error_code ec;
  const fs::path d(path);
  return fs::is_directory(d, ec) && fs::is_regular_file(d / "config.json", ec) &&
         fs::is_regular_file(d / "model.safetensors", ec);
}

GptWeights import_hf_gpt2(const std::string& dir) {
  std::error_code ec;
  const fs::path d(dir);
  GANNET_CHECK(fs::is_directory(d, ec), "cannot import GPT-2 from ", dir, ": not a directory");
  const std::string config_path = (d / "config.json").string(), model_path = (d / "model.safetensors").string();
  GANNET_CHECK(fs::is_regular_file(config_path, ec), "cannot import GPT-2 from ", dir,
               ": no config.json (expected a Hugging Face GPT-2 directory)");
  if (!fs::is_regular_file(model_path, ec)) {
    GANNET_CHECK(!fs::exists(d / "model.safetensors.index.json", ec), "cannot import GPT-2 from ", dir,
                 ": sharded checkpoints (model.safetensors.index.json) are not supported; save it as one "
                 "model.safetensors");
    GANNET_CHECK(!fs::exists(d / "pytorch_model.bin", ec), "cannot import GPT-2 from ", dir,
                 ": only model.safetensors is read, not pytorch_model.bin; convert it to safetensors");
    fail(str("cannot import GPT-2 from ", dir, ": no model.safetensors"));
  }

  GptWeights w;
  w.config = read_hf_config(config_path);
  std::map<std::string, Shape> expected;
  for (auto& [name, shape] : gpt_weight_shapes(w.config)) expected.emplace(name, shape);

  SafeTensors file = SafeTensors::open(model_path);
  std::map<std::string, std::string> stored_as;  // gannet name -> name in the file
  Tensor lm_head;
  for (const std::string& stored : file.names()) {
    const std::string name = stored.starts_with(kPrefix) ? stored.substr(kPrefix.size()) : stored;
    if (name == "lm_head.weight") {
      lm_head = to_f32(file.get(stored), model_path, stored);
      continue;
    }
    auto it = expected.find(name);
    if (it == expected.end()) {
      GANNET_CHECK(is_mask_buffer(name), model_path, ": unknown tensor '", escape_bytes(stored), "' (not part of GPT-2 with n_layer ",
                   w.config.n_layer, ")");
      continue;
    }
    GANNET_CHECK(!stored_as.count(name), model_path, ": tensor '", name, "' is stored twice ('", escape_bytes(stored_as[name]),
                 "' and '", escape_bytes(stored), "')");
    stored_as[name] = stored;
    const bool conv1d = is_conv1d_weight(name);
    const Shape& shape = it->second;
    const Shape file_shape = conv1d ? Shape{shape[1], shape[0]} : shape;
    Tensor t = file.get(stored);
    GANNET_CHECK(t.shape() == file_shape, model_path, ": tensor '", escape_bytes(stored), "' has shape ", shape_str(t.shape()),
                 ", expected ", shape_str(file_shape), conv1d ? " (Conv1D weights are stored [in, out])" : "",
                 " for config.json's n_embd ", w.config.n_embd, ", vocab_size ", w.config.vocab_size,
                 ", n_positions ", w.config.n_ctx);
    t = to_f32(t, model_path, stored);
    w.tensors.emplace(name, conv1d ? transpose(t) : t);
  }
  for (const auto& [name, shape] : expected) {
    GANNET_CHECK(w.tensors.count(name), model_path, ": tensor '", name, "' (or '", kPrefix, name, "') is missing");
  }
  if (lm_head.defined()) {
    const Tensor& wte = w.tensors.at("wte.weight");
    GANNET_CHECK(lm_head.shape() == wte.shape(), model_path, ": tensor 'lm_head.weight' has shape ",
                 shape_str(lm_head.shape()), ", expected ", shape_str(wte.shape()), " (the shape of wte.weight, for ",
                 "config.json's vocab_size ", w.config.vocab_size, " and n_embd ", w.config.n_embd, ")");
    GANNET_CHECK(std::equal(wte.f32(), wte.f32() + wte.numel(), lm_head.f32()),
                 model_path, ": lm_head.weight differs from wte.weight; gannet ties the LM head to the token "
                 "embedding");
  }
  return w;
}

}  // namespace gannet::io
