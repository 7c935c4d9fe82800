#include "gannet/io/nm_sparse_encoder.h"

#include "gannet/core/error.h"
#include "gannet/core/escape.h"
#include "gannet/io/encoder_checkpoint.h"
#include "gannet/io/json_config.h"
#include "gannet/io/low_bit_encoder.h"
#include "gannet/io/safetensors.h"

namespace gannet::io {

namespace {
// The block products have the shapes low_bit_encoder_low_bit_shapes gives them (without the
// embedding tables, which stay f32 here).
std::vector<std::pair<std::string, Shape>> product_shapes(const models::EncoderConfig& c) {
  std::vector<std::pair<std::string, Shape>> out;
  for (auto& [name, shape] : low_bit_encoder_low_bit_shapes(c))
    if (!is_embedding_table(name)) out.emplace_back(name, shape);
  return out;
}

std::vector<std::pair<std::string, Shape>> dense_shapes(const models::EncoderConfig& c) {
  std::vector<std::pair<std::string, Shape>> out = low_bit_encoder_dense_shapes(c);
  for (auto& [name, shape] : low_bit_encoder_low_bit_shapes(c))
    if (is_embedding_table(name)) out.emplace_back(name, shape);
  return out;
}

void validate_products(const NmSparseEncoder& m, const std::string& what) {
  const auto shapes = product_shapes(m.config);
  std::map<std::string, bool> known;
  for (const auto& [name, shape] : shapes) {
    known[name] = true;
    const auto s = m.sparse.find(name);
    const auto q = m.quantized.find(name);
    GANNET_CHECK((s != m.sparse.end()) != (q != m.quantized.end()), what, ": block product '", name, "' is ",
                 s == m.sparse.end() ? "missing" : "both sparse and dense");
    const std::string tw = what + ": '" + name + "'";
    if (s != m.sparse.end()) {
      GANNET_CHECK(s->second.rows == shape[0] && s->second.in == shape[1], tw, " is [", s->second.rows, ", ",
                   s->second.in, "], the config needs ", shape_str(shape));
      s->second.validate(tw);
    } else {
      GANNET_CHECK(q->second.rows == shape[0] && q->second.in == shape[1], tw, " is [", q->second.rows, ", ",
                   q->second.in, "], the config needs ", shape_str(shape));
      GANNET_CHECK(q->second.symmetric(), tw, " is asymmetric (the int8-input kernels take symmetric weights)");
      q->second.validate(tw);
    }
  }
  for (const auto& [name, t] : m.sparse)
    GANNET_CHECK(known.count(name), what, ": unknown sparse tensor '", escape_bytes(name), "'");
  for (const auto& [name, t] : m.quantized)
    GANNET_CHECK(known.count(name), what, ": unknown quantized tensor '", escape_bytes(name), "'");
}

nlohmann::json weights_metadata(const NmSparseEncoder& m) {
  nlohmann::json w = nlohmann::json::object();
  for (const auto& [name, t] : m.sparse) {
    nlohmann::json e = t.metadata();
    e["form"] = "nm";
    w[name] = e;
  }
  for (const auto& [name, q] : m.quantized)
    w[name] = {{"form", "dense"}, {"bits", q.bits}, {"group", q.group}, {"in", q.in}, {"padded_in", q.padded_in}};
  for (const auto& [name, a] : m.inputs)
    if (!(a == ActivationQuant{true})) w[name]["inputs"] = {{"bits", a.bits}, {"asymmetric", a.asymmetric}};
  return {{"format", kNmSparseFormat}, {"weights", w}};
}

// A weight entry's "inputs" (absent: int8 token-wise).
ActivationQuant read_inputs(const JsonReader& e, const std::string& what) {
  ActivationQuant a{true};
  if (!e.has("inputs")) return a;
  const JsonReader i = e.child("inputs");
  const int64_t bits = i.get_int<int64_t>("bits", 8);
  GANNET_CHECK(bits == 8 || bits == 4, what, ": inputs of ", bits, " bits (8 or 4)");
  a.bits = (int)bits;
  a.asymmetric = i.get_bool("asymmetric", false);
  i.finish();
  return a;
}

QuantizedTensor read_dense_product(const SafeTensors& file, const std::string& name, const JsonReader& e,
                                   const Shape& shape) {
  const std::string what = file.path() + ": quantized tensor '" + name + "'";
  QuantizedTensor q;
  const int64_t bits = e.get_int<int64_t>("bits", 0);
  GANNET_CHECK(bits == 8 || bits == 4, what, " has ", bits, " bits (8 or 4)");
  q.bits = (int)bits;
  q.rows = shape[0];
  q.group = e.get_int<int64_t>("group", 0, 1);
  q.in = e.get_int<int64_t>("in", 0, 1);
  q.padded_in = e.get_int<int64_t>("padded_in", 0, 1);
  for (const char* part : {".q", ".scale"})
    GANNET_CHECK(file.has(name + part), what, ": tensor '", name + part, "' is missing");
  GANNET_CHECK(!file.has(name + ".zero"), what, ": has zero points (the products are symmetric)");
  q.q = file.get(name + ".q");
  q.scale = file.get(name + ".scale");
  q.validate(what);
  return q;
}

bool is_part_of(const std::string& tensor, const std::string& weight) {
  if (!tensor.starts_with(weight + ".")) return false;
  const std::string suffix = tensor.substr(weight.size());
  return suffix == ".values" || suffix == ".index" || suffix == ".scale" || suffix == ".q";
}
}  // namespace

NmSparseEncoder::Bytes NmSparseEncoder::bytes() const {
  Bytes b;
  for (const auto& [name, t] : sparse) b.products += t.nbytes();
  for (const auto& [name, q] : quantized) b.products += q.nbytes();
  for (const auto& [name, t] : dense) b.dense += (int64_t)t.nbytes();
  return b;
}

ActivationQuant NmSparseEncoder::input(const std::string& name) const {
  auto it = inputs.find(name);
  return it == inputs.end() ? ActivationQuant{true} : it->second;
}

void NmSparseEncoder::validate(const std::string& what) const {
  try {
    config.validate();
  } catch (const Error& e) {
    fail(str(what, ": ", e.what()));
  }
  GANNET_CHECK(config.num_classes >= 2 && !config.mlm_head, what, ": a packed encoder is a classifier (num_classes ",
               config.num_classes, ", mlm_head ", config.mlm_head ? "true" : "false", ")");
  validate_products(*this, what);
  for (const auto& [name, a] : inputs) {
    GANNET_CHECK(sparse.count(name) || quantized.count(name), what, ": inputs for '", escape_bytes(name),
                 "', not a block product");
    GANNET_CHECK(a.quantized && a.static_scale == 0.f && (a.bits == 8 || a.bits == 4) && (!a.asymmetric || a.bits == 4),
                 what, ": '", escape_bytes(name), "' has inputs the products do not take (token-wise int8, or int4 ",
                 "symmetric or asymmetric)");
  }
  const auto shapes = dense_shapes(config);
  std::map<std::string, bool> known;
  for (const auto& [name, shape] : shapes) {
    known[name] = true;
    auto it = dense.find(name);
    GANNET_CHECK(it != dense.end(), what, ": tensor '", name, "' is missing");
    GANNET_CHECK(it->second.dtype() == DType::f32, what, ": tensor '", name, "' is ", it->second.describe(),
                 ", expected f32");
    check_shape(it->second, shape, what + ": tensor '" + name + "'");
  }
  for (const auto& [name, t] : dense) GANNET_CHECK(known.count(name), what, ": unknown tensor '", escape_bytes(name), "'");
}

void save_nm_sparse_encoder(const std::string& path, const NmSparseEncoder& model) {
  model.validate(path);
  std::vector<std::pair<std::string, Tensor>> entries;
  for (const auto& [name, t] : model.sparse) t.append_entries(name, entries);
  for (const auto& [name, q] : model.quantized) q.append_entries(name, entries);
  for (const auto& [name, t] : model.dense) entries.emplace_back(name, t);
  save_safetensors(path, entries,
                   {{"nm_sparse", weights_metadata(model).dump()},
                    {"model_type", "encoder"},
                    {"model_config", encoder_config_to_json(model.config).dump()}});
}

bool holds_nm_sparse_weights(const SafeTensors& file) {
  auto meta = file.metadata().find("nm_sparse");
  if (meta == file.metadata().end()) return false;
  const nlohmann::json doc = nlohmann::json::parse(meta->second, nullptr, /*allow_exceptions=*/false);
  return doc.is_object() && doc.contains("format") && doc.at("format") == kNmSparseFormat;
}

NmSparseEncoder read_nm_sparse_encoder(const std::string& path) {
  const SafeTensors file = SafeTensors::open(path);
  GANNET_CHECK(holds_nm_sparse_weights(file), path, ": is not a packed N:M sparse encoder (no ", kNmSparseFormat,
               " metadata 'nm_sparse')");
  auto type = file.metadata().find("model_type");
  GANNET_CHECK(type != file.metadata().end() && type->second == "encoder", path,
               ": N:M sparse weights of a model that is not an encoder");
  auto config = file.metadata().find("model_config");
  GANNET_CHECK(config != file.metadata().end(), path, ": no 'model_config' in its metadata");
  NmSparseEncoder out;
  {
    const JsonReader r(parse_json_text(config->second, path + " model_config"), path + " model_config");
    out.config = read_encoder_config(r);
    r.finish();
  }
  out.config.validate();
  const nlohmann::json doc = parse_json_text(file.metadata().at("nm_sparse"), path + " nm_sparse");
  const JsonReader r(doc, path + " nm_sparse");
  r.get_string("format", "");
  GANNET_CHECK(doc.contains("weights") && doc.at("weights").is_object(), path, ": nm_sparse has no 'weights' object");
  const JsonReader weights = r.child("weights");
  std::map<std::string, Shape> shapes;
  for (const auto& [name, shape] : product_shapes(out.config)) shapes[name] = shape;
  for (auto it = doc.at("weights").begin(); it != doc.at("weights").end(); ++it) {
    const std::string& name = it.key();
    GANNET_CHECK(shapes.count(name), path, ": nm_sparse lists '", escape_bytes(name), "', not a block product");
    const JsonReader e = weights.child(name);
    const ActivationQuant a = read_inputs(e, path + ": '" + escape_bytes(name) + "'");
    if (!(a == ActivationQuant{true})) out.inputs[name] = a;
    const std::string form = e.get_string("form", "");
    if (form == "nm") out.sparse.emplace(name, NmSparseTensor::read(file, name, e));
    else if (form == "dense") out.quantized.emplace(name, read_dense_product(file, name, e, shapes.at(name)));
    else fail(str(path, ": '", escape_bytes(name), "' has form '", escape_bytes(form), "' (nm or dense)"));
  }
  r.finish();
  for (const auto& [name, shape] : dense_shapes(out.config))
    if (file.has(name)) out.dense.emplace(name, file.get(name));
  for (const std::string& name : file.names()) {
    bool known = out.dense.count(name) > 0;
    for (const auto& [w, t] : shapes) known = known || is_part_of(name, w);
    GANNET_CHECK(known, path, ": unknown tensor '", escape_bytes(name), "'");
  }
  out.validate(path);
  return out;
}

}  // namespace gannet::io
