#include "gannet/io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "gannet/core/atomic_file.h"
#include "gannet/core/escape.h"
#include "gannet/core/mapped_file.h"

namespace gannet::io {

static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace {

using json = nlohmann::json;

struct StName {
  const char* name;
  DType dtype;
};
constexpr StName kGannetNames[] = {{"F32", DType::f32}, {"BF16", DType::bf16}, {"F16", DType::f16},
                                   {"I8", DType::i8},   {"U8", DType::u8},     {"I32", DType::i32},
                                   {"I64", DType::i64}};

// Every dtype the safetensors format defines, with its bits per element, so that a file holding
// tensors gannet cannot use (F64, BOOL, ...) still opens and its other tensors can be read.
struct StBits {
  const char* name;
  int bits;
};
constexpr StBits kAllNames[] = {{"BOOL", 8},    {"F4", 4},       {"F6_E2M3", 6},  {"F6_E3M2", 6},
                                {"U8", 8},      {"I8", 8},       {"F8_E5M2", 8},  {"F8_E4M3", 8},
                                {"F8_E8M0", 8}, {"I16", 16},     {"U16", 16},     {"F16", 16},
                                {"BF16", 16},   {"I32", 32},     {"U32", 32},     {"F32", 32},
                                {"F64", 64},    {"I64", 64},     {"U64", 64}};

int st_bits(const std::string& name) {
  for (const auto& n : kAllNames)
    if (name == n.name) return n.bits;
  return 0;
}

bool as_u64(const json& j, uint64_t& out) {
  if (j.is_number_unsigned()) {
    out = j.get<uint64_t>();
    return true;
  }
  if (j.is_number_integer() && j.get<int64_t>() >= 0) {
    out = (uint64_t)j.get<int64_t>();
    return true;
  }
  return false;
}

}  // namespace

const char* safetensors_dtype_name(DType t) {
  for (const auto& n : kGannetNames)
    if (n.dtype == t) return n.name;
  fail(str("dtype ", dtype_name(t), " has no safetensors name (packed int4 in safetensors is not supported yet)"));
}

DType dtype_from_safetensors_name(const std::string& name) {
  for (const auto& n : kGannetNames)
    if (name == n.name) return n.dtype;
  fail(str("safetensors dtype '", escape_bytes(name), "' is not supported by gannet"));
}

SafeTensors SafeTensors::open(const std::string& path) {
  SafeTensors st;
  st.path_ = path;
  st.file_ = MappedFile::open(path);
  const uint8_t* bytes = st.file_->data();
  const uint64_t size = st.file_->size();
  // Everything after the path may quote the file's bytes (names, dtypes, the JSON parser's
  // excerpt): escaped, so that a NUL does not cut the message and invalid UTF-8 is not printed raw.
  auto bad = [&](const auto&... what) {
    fail(str(path, ": not a valid safetensors file: ", escape_bytes(str(what...))));
  };

  if (size < 8) bad("file is ", size, " bytes, shorter than the 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  if (n > size - 8) bad("header length ", n, " exceeds the ", size - 8, " bytes after the length field");
  st.data_start_ = 8 + (size_t)n;
  const uint64_t data_size = size - 8 - n;

  json header;
  try {
    header = json::parse(reinterpret_cast<const char*>(bytes + 8), reinterpret_cast<const char*>(bytes + 8 + n));
  } catch (const json::exception& e) {
    bad("header is not valid JSON (", e.what(), ")");
  }
  if (!header.is_object()) bad("header is a JSON ", header.type_name(), ", not an object");

  std::vector<std::pair<uint64_t, std::string>> by_offset;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (v.is_null()) continue;
      if (!v.is_object()) bad("__metadata__ is a JSON ", v.type_name(), ", not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          bad("__metadata__ entry '", m.key(), "' is a ", m.value().type_name(), ", not a string");
        st.metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    auto bad_tensor = [&](const auto&... what) { bad("tensor '", name, "': ", what...); };
    if (!v.is_object()) bad_tensor("entry is a JSON ", v.type_name(), ", not an object");
    for (const char* key : {"dtype", "shape", "data_offsets"})
      if (!v.contains(key)) bad_tensor("missing '", key, "'");

    Entry e;
    const json& jd = v["dtype"];
    if (!jd.is_string()) bad_tensor("dtype is a ", jd.type_name(), ", not a string");
    e.st_dtype = jd.get<std::string>();
    int bits = st_bits(e.st_dtype);
    if (bits == 0) bad_tensor("unknown dtype '", e.st_dtype, "'");
    for (const auto& g : kGannetNames)
      if (e.st_dtype == g.name) e.supported = true, e.dtype = g.dtype;

    const json& js = v["shape"];
    if (!js.is_array()) bad_tensor("shape is a ", js.type_name(), ", not an array");
    uint64_t numel = 1;
    for (const json& d : js) {
      uint64_t dim;
      if (!as_u64(d, dim) || dim > (uint64_t)INT64_MAX) bad_tensor("shape ", js.dump(), " is not a list of non-negative integers");
      if (__builtin_mul_overflow(numel, dim, &numel)) bad_tensor("shape ", js.dump(), " is too large");
      e.shape.push_back((int64_t)dim);
    }
    uint64_t bits_total;
    if (__builtin_mul_overflow(numel, (uint64_t)bits, &bits_total) || bits_total > (uint64_t)INT64_MAX)
      bad_tensor("shape ", js.dump(), " is too large");
    const uint64_t nbytes = (bits_total + 7) / 8;

    const json& jo = v["data_offsets"];
    if (!jo.is_array() || jo.size() != 2 || !as_u64(jo[0], e.begin) || !as_u64(jo[1], e.end))
      bad_tensor("data_offsets ", jo.dump(), " is not a pair of non-negative integers");
    if (e.begin > e.end) bad_tensor("data_offsets [", e.begin, ", ", e.end, "] end before they begin");
    if (e.end > data_size)
      bad_tensor("data_offsets [", e.begin, ", ", e.end, "] go past the end of the data (", data_size,
                 " bytes; the file may be truncated)");
    if (e.end - e.begin != nbytes)
      bad_tensor("data_offsets [", e.begin, ", ", e.end, "] hold ", e.end - e.begin, " bytes, but ", e.st_dtype,
                 shape_str(e.shape), " needs ", nbytes);
    by_offset.emplace_back(e.begin, name);
    st.entries_.emplace(name, std::move(e));
  }
  std::sort(by_offset.begin(), by_offset.end());
  for (auto& [off, name] : by_offset) st.order_.push_back(std::move(name));
  return st;
}

Tensor SafeTensors::get(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) fail(str(path_, ": no tensor named '", escape_bytes(name), "'"));
  const Entry& e = it->second;
  if (!e.supported)
    fail(str(path_, ": tensor '", escape_bytes(name), "' has dtype ", escape_bytes(e.st_dtype),
             ", which gannet does not support"));
  uint8_t* p = file_->mutable_data() + data_start_ + e.begin;
  if (e.end == e.begin) return Tensor::zeros(e.shape, e.dtype);  // nothing to share
  size_t align = (size_t)std::max(1, dtype_bits(e.dtype) / 8);
  if (reinterpret_cast<uintptr_t>(p) % align != 0) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    std::memcpy(t.raw(), p, e.end - e.begin);
    return t;
  }
  return Tensor::wrap(p, e.shape, e.dtype, file_);
}

Tensor SafeTensors::get(const std::string& name, DType expected_dtype, const Shape& expected_shape) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) fail(str(path_, ": no tensor named '", escape_bytes(name), "'"));
  const Entry& e = it->second;
  if (!e.supported || e.dtype != expected_dtype || e.shape != expected_shape)
    fail(str(path_, ": tensor '", name, "': expected ", dtype_name(expected_dtype), shape_str(expected_shape),
             ", got ", e.supported ? dtype_name(e.dtype) : escape_bytes(e.st_dtype), shape_str(e.shape)));
  return get(name);
}

std::string safetensors_header(const std::string& path, const std::vector<TensorEntry>& entries,
                               const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = std::move(m);
  }
  uint64_t offset = 0;
  for (const TensorEntry& e : entries) {
    nlohmann::ordered_json entry = nlohmann::ordered_json::object();
    entry["dtype"] = safetensors_dtype_name(e.dtype);
    entry["shape"] = e.shape;
    entry["data_offsets"] = {offset, offset + e.nbytes};
    header[e.name] = std::move(entry);
    offset += e.nbytes;
  }
  std::string h;
  try {
    h = header.dump();
  } catch (const nlohmann::json::exception& e) {
    fail(str("cannot write ", path, ": ", e.what()));
  }
  h.append((8 - (8 + h.size()) % 8) % 8, ' ');
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[(size_t)i] = (char)((h.size() >> (8 * i)) & 0xff);
  return out + h;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::set<std::string> seen;
  std::vector<TensorEntry> entries;
  for (const auto& [name, t] : tensors) {
    GANNET_CHECK(name != "__metadata__", "cannot write ", path, ": '__metadata__' is not a valid tensor name");
    GANNET_CHECK(seen.insert(name).second, "cannot write ", path, ": tensor name '", name, "' appears twice");
    GANNET_CHECK(t.defined(), "cannot write ", path, ": tensor '", name, "' is undefined");
    GANNET_CHECK(t.device() == Device::cpu, "cannot write ", path, ": tensor '", name, "' is not on the CPU");
    GANNET_CHECK(t.dtype() != DType::i4, "cannot write ", path, ": tensor '", name, "' is ", t.describe(),
                 "; saving packed int4 to safetensors is not supported yet");
    entries.push_back({name, t.dtype(), t.shape(), (uint64_t)t.nbytes()});
  }
  const std::string header = safetensors_header(path, entries, metadata);
  write_file_atomic(path, [&](std::ostream& os) {
    os.write(header.data(), (std::streamsize)header.size());
    for (const auto& [name, t] : tensors) os.write(static_cast<const char*>(t.raw()), (std::streamsize)t.nbytes());
  });
}

}  // namespace gannet::io
