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

void save_low_bit_file(const std::string& path, const LowBitFile& file) {
  const int bits = low_bit_scheme_bits(file.scheme);
  GANNET_CHECK(!file.weights.empty(), path, ": no low-bit weights to save");
  std::vector<std::pair<std::string, Tensor>> entries;
  nlohmann::json weights = nlohmann::json::object();
  for (const auto& [name, t] : file.weights) {
    const std::string what = path + ": low-bit tensor '" + escape_bytes(name) + "'";
    t.validate(what);
    GANNET_CHECK(t.bits == bits, what, " has ", t.bits, "-bit weights, scheme ", file.scheme, " has ", bits);
    t.append_entries(name, entries);
    weights[name] = t.metadata();
  }
  const nlohmann::json doc = {{"format", kLowBitFormat}, {"scheme", file.scheme}, {"weights", weights}};
  save_safetensors(path, entries, {{"quantization", doc.dump()}});
}

LowBitFile read_low_bit_file(const std::string& path) {
  const SafeTensors st = SafeTensors::open(path);
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
  // Every tensor in the file belongs to a listed weight.
  for (const std::string& tensor : st.names()) {
    const size_t dot = tensor.rfind('.');
    const std::string base = dot == std::string::npos ? tensor : tensor.substr(0, dot);
    GANNET_CHECK(out.weights.count(base), path, ": tensor '", escape_bytes(tensor),
                 "' belongs to no listed low-bit weight");
  }
  return out;
}

}  // namespace gannet::io
