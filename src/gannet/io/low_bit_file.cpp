#include "gannet/io/low_bit_file.h"

#include "gannet/core/error.h"
#include "gannet/core/escape.h"
#include "gannet/io/json_config.h"
#include "gannet/io/safetensors.h"

namespace gannet::io {

std::vector<std::string> low_bit_scheme_names() { return {"w1a8", "w2a8"}; }

int low_bit_scheme_bits(const std::string& scheme) {
  if (scheme == "w1a8") return 1;
  if (scheme == "w2a8") return 2;
  fail(str("low-bit scheme '", escape_bytes(scheme), "' is not known (w1a8, w2a8)"));
}

nlohmann::json low_bit_metadata(const std::string& path, const std::string& scheme,
                                const std::map<std::string, LowBitTensor>& weights,
                                std::vector<std::pair<std::string, Tensor>>& entries) {
  int bits = 0;
  try {
    bits = low_bit_scheme_bits(scheme);
  } catch (const Error& e) {
    fail(str(path, ": ", e.what()));
  }
  GANNET_CHECK(!weights.empty(), path, ": no low-bit weights to save");
  nlohmann::json listed = nlohmann::json::object();
  for (const auto& [name, t] : weights) {
    const std::string what = path + ": low-bit tensor '" + escape_bytes(name) + "'";
    t.validate(what);
    GANNET_CHECK(t.bits == bits, what, " has ", t.bits, "-bit weights, scheme ", scheme, " has ", bits);
    t.append_entries(name, entries);
    listed[name] = t.metadata();
  }
  return {{"format", kLowBitFormat}, {"scheme", scheme}, {"weights", listed}};
}

void save_low_bit_file(const std::string& path, const LowBitFile& file) {
  std::vector<std::pair<std::string, Tensor>> entries;
  const nlohmann::json doc = low_bit_metadata(path, file.scheme, file.weights, entries);
  save_safetensors(path, entries, {{"quantization", doc.dump()}});
}

bool holds_low_bit_weights(const SafeTensors& file) {
  auto meta = file.metadata().find("quantization");
  if (meta == file.metadata().end()) return false;
  const nlohmann::json doc = nlohmann::json::parse(meta->second, nullptr, /*allow_exceptions=*/false);
  return doc.is_object() && doc.contains("format") && doc.at("format") == kLowBitFormat;
}

LowBitFile read_low_bit_weights(const SafeTensors& st) {
  const std::string& path = st.path();
  auto meta = st.metadata().find("quantization");
  GANNET_CHECK(meta != st.metadata().end(), path, ": no 'quantization' metadata (not a low-bit weight file)");
  const nlohmann::json doc = parse_json_text(meta->second, path + " quantization metadata");
  GANNET_CHECK(doc.is_object(), path, ": quantization metadata is not a JSON object");
  JsonReader r(doc, path + " quantization metadata");
  const std::string format = r.get_string("format", "");
  GANNET_CHECK(format == kLowBitFormat, path, ": quantization format '", escape_bytes(format),
               "' is not supported (", kLowBitFormat, ")");
  LowBitFile out;
  out.scheme = r.get_string("scheme", "");
  int bits = 0;
  try {
    bits = low_bit_scheme_bits(out.scheme);
  } catch (const Error& e) {
    fail(str(path, ": ", e.what()));
  }
  GANNET_CHECK(r.has("weights") && doc.at("weights").is_object() && !doc.at("weights").empty(), path,
               ": quantization metadata lists no weights");
  const JsonReader weights = r.child("weights");
  for (const auto& [name, entry] : doc.at("weights").items()) {
    GANNET_CHECK(entry.is_object(), path, ": low-bit tensor '", escape_bytes(name), "': metadata entry is not a JSON object");
    LowBitTensor t = LowBitTensor::read(st, name, weights.child(name));
    GANNET_CHECK(t.bits == bits, path, ": low-bit tensor '", escape_bytes(name), "' has ", t.bits,
                 "-bit weights, scheme ", out.scheme, " has ", bits);
    out.weights.emplace(name, std::move(t));
  }
  r.finish();
  return out;
}

bool is_low_bit_part(const std::map<std::string, LowBitTensor>& weights, const std::string& name) {
  const size_t dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  auto it = weights.find(name.substr(0, dot));
  if (it == weights.end()) return false;
  const std::string part = name.substr(dot + 1);
  return part == "sign" || part == "scale" || (part == "nonzero" && it->second.ternary());
}

LowBitFile read_low_bit_file(const std::string& path) {
  const SafeTensors st = SafeTensors::open(path);
  if (auto type = st.metadata().find("model_type"); type != st.metadata().end())
    fail(str(path, ": is a packed low-bit ", escape_bytes(type->second),
             " model, not a bare low-bit weight file (gannet eval runs it)"));
  LowBitFile out = read_low_bit_weights(st);
  // Every tensor in the file belongs to a listed weight.
  for (const std::string& tensor : st.names())
    GANNET_CHECK(is_low_bit_part(out.weights, tensor), path, ": tensor '", escape_bytes(tensor),
                 "' belongs to no listed low-bit weight");
  return out;
}

}  // namespace gannet::io
