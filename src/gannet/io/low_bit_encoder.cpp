#include "gannet/io/low_bit_encoder.h"

#include "gannet/core/error.h"
#include "gannet/core/escape.h"
#include "gannet/core/parse_number.h"
#include "gannet/io/encoder_checkpoint.h"
#include "gannet/io/gpt_weights.h"
#include "gannet/io/low_bit_file.h"
#include "gannet/io/safetensors.h"

namespace gannet::io {

namespace {
// The trunk's tensors are a GPT's of the same sizes (nn::Transformer's names).
std::vector<std::pair<std::string, Shape>> trunk_shapes(const models::EncoderConfig& c) {
  models::GptConfig g;
  g.vocab_size = c.vocab_size;
  g.n_ctx = c.n_ctx;
  g.n_layer = c.n_layer;
  g.n_head = c.n_head;
  g.n_embd = c.n_embd;
  g.layernorm_eps = c.layernorm_eps;
  return gpt_weight_shapes(g);
}

bool is_block_product(const std::string& name) {
  for (const char* suffix : {".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight"})
    if (name.starts_with("h.") && name.ends_with(suffix)) return true;
  return false;
}

bool is_low_bit_name(const std::string& name) { return is_embedding_table(name) || is_block_product(name); }

template <class T>
void check_no_unknown(const std::map<std::string, T>& held, const std::vector<std::pair<std::string, Shape>>& expected,
                      const std::string& what, const char* kind) {
  std::map<std::string, bool> names;
  for (const auto& [name, shape] : expected) names[name] = true;
  for (const auto& [name, t] : held)
    GANNET_CHECK(names.count(name), what, ": unknown ", kind, " tensor '", escape_bytes(name),
                 "' (not one of a packed encoder's with this config)");
}
}  // namespace

bool is_embedding_table(const std::string& name) { return name == "wte.weight" || name == "wpe.weight"; }

std::vector<std::pair<std::string, Shape>> low_bit_encoder_low_bit_shapes(const models::EncoderConfig& c) {
  std::vector<std::pair<std::string, Shape>> out;
  for (auto& [name, shape] : trunk_shapes(c))
    if (is_low_bit_name(name)) out.emplace_back(name, shape);
  return out;
}

std::vector<std::pair<std::string, Shape>> low_bit_encoder_dense_shapes(const models::EncoderConfig& c) {
  std::vector<std::pair<std::string, Shape>> out;
  for (auto& [name, shape] : trunk_shapes(c))
    if (!is_low_bit_name(name)) out.emplace_back(name, shape);
  out.push_back({"classifier.weight", {c.num_classes, c.n_embd}});
  out.push_back({"classifier.bias", {c.num_classes}});
  return out;
}

LowBitEncoder::Bytes LowBitEncoder::bytes() const {
  Bytes b;
  for (const auto& [name, t] : low_bit) (is_embedding_table(name) ? b.embeddings : b.products) += t.nbytes();
  for (const auto& [name, t] : dense) b.dense += (int64_t)t.nbytes();
  return b;
}

void LowBitEncoder::validate(const std::string& what) const {
  try {
    config.validate();
  } catch (const Error& e) {
    fail(str(what, ": ", e.what()));
  }
  GANNET_CHECK(config.num_classes >= 2 && !config.mlm_head, what, ": a packed encoder is a classifier (num_classes ",
               config.num_classes, ", mlm_head ", config.mlm_head ? "true" : "false",
               "; needs num_classes >= 2 and no MLM head)");
  int bits = 0;
  try {
    bits = low_bit_scheme_bits(scheme);
  } catch (const Error& e) {
    fail(str(what, ": ", e.what()));
  }
  const auto low_shapes = low_bit_encoder_low_bit_shapes(config);
  check_no_unknown(low_bit, low_shapes, what, "low-bit");
  for (const auto& [name, shape] : low_shapes) {
    auto it = low_bit.find(name);
    GANNET_CHECK(it != low_bit.end(), what, ": low-bit weight '", name, "' is missing (encoder config ",
                 encoder_config_to_json(config).dump(), ")");
    const LowBitTensor& t = it->second;
    const std::string tw = what + ": low-bit tensor '" + name + "'";
    GANNET_CHECK(t.rows == shape[0] && t.in == shape[1], tw, " is [", t.rows, ", ", t.in, "], but encoder config ",
                 encoder_config_to_json(config).dump(), " needs ", shape_str(shape));
    t.validate(tw);
    GANNET_CHECK(t.bits == bits, tw, " has ", t.bits, "-bit weights, scheme ", scheme, " has ", bits);
  }
  const auto dense_shapes = low_bit_encoder_dense_shapes(config);
  check_no_unknown(dense, dense_shapes, what, "dense");
  for (const auto& [name, shape] : dense_shapes) {
    auto it = dense.find(name);
    GANNET_CHECK(it != dense.end(), what, ": tensor '", name, "' is missing (encoder config ",
                 encoder_config_to_json(config).dump(), ")");
    GANNET_CHECK(it->second.dtype() == DType::f32, what, ": tensor '", name, "' is ", it->second.describe(),
                 ", expected f32");
    check_shape(it->second, shape, what + ": tensor '" + name + "'");
  }
}

void save_low_bit_encoder(const std::string& path, const LowBitEncoder& model) {
  model.validate(path);
  std::vector<std::pair<std::string, Tensor>> entries;
  const nlohmann::json quantization = low_bit_metadata(path, model.scheme, model.low_bit, entries);
  for (const auto& [name, t] : model.dense) entries.emplace_back(name, t);
  save_safetensors(path, entries,
                   {{"quantization", quantization.dump()},
                    {"model_type", "encoder"},
                    {"model_config", encoder_config_to_json(model.config).dump()}});
}

bool is_low_bit_encoder(const SafeTensors& file) {
  auto type = file.metadata().find("model_type");
  return type != file.metadata().end() && type->second == "encoder" && holds_low_bit_weights(file);
}

LowBitEncoder read_low_bit_encoder(const std::string& path) {
  const SafeTensors file = SafeTensors::open(path);
  auto type = file.metadata().find("model_type");
  const bool typed = type != file.metadata().end();
  if (!holds_low_bit_weights(file))
    fail(str(path, ": is not a packed low-bit encoder (no gannet-lowbit-1 quantization metadata; it holds ",
             typed && type->second == "encoder" ? std::string("an f32 encoder checkpoint")
                                                 : "a model of type " + quote_text(typed ? type->second : std::string("gpt")),
             ")"));
  GANNET_CHECK(typed, path, ": is a bare low-bit weight file (no model_type), not a packed low-bit encoder");
  GANNET_CHECK(type->second == "encoder", path, ": holds a packed model of type ", quote_text(type->second),
               ", not a packed low-bit encoder");
  LowBitEncoder out;
  auto config = file.metadata().find("model_config");
  GANNET_CHECK(config != file.metadata().end(), path, ": no 'model_config' in its metadata");
  const JsonReader r(parse_json_text(config->second, path + " model_config"), path + " model_config");
  out.config = read_encoder_config(r);
  r.finish();
  const LowBitFile weights = read_low_bit_weights(file);
  out.scheme = weights.scheme;
  out.low_bit = weights.weights;
  for (const auto& [name, shape] : low_bit_encoder_dense_shapes(out.config))
    if (file.has(name)) out.dense.emplace(name, file.get(name));
  for (const std::string& name : file.names())
    GANNET_CHECK(out.dense.count(name) || is_low_bit_part(out.low_bit, name), path, ": unknown tensor '",
                 escape_bytes(name), "' (not one of a packed encoder's with config ",
                 encoder_config_to_json(out.config).dump(), ")");
  out.validate(path);
  return out;
}

}  // namespace gannet::io
