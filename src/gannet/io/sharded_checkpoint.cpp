#include "gannet/io/sharded_checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "gannet/core/atomic_file.h"
#include "gannet/core/checked_math.h"
#include "gannet/core/escape.h"
#include "gannet/io/model_config.h"
#include "gannet/io/safetensors.h"

namespace gannet::io {

namespace {
using json = nlohmann::json;
namespace fs = std::filesystem;
constexpr const char* kFormat = "gannet-sharded-checkpoint";

// Calls fn(whole_offset, piece_offset, length) for each run of consecutive elements of the piece
// that are also consecutive in the whole tensor (runs along the last dimension of the box).
template <class Fn>
void for_each_run(const PiecePlace& place, const Shape& shape, Fn&& fn) {
  const size_t d = shape.size();
  if (d == 0) {  // a scalar: one element
    if (place.flat_begin == 0 && place.flat_end == 1) fn(0, 0, 1);
    return;
  }
  std::vector<int64_t> stride(d, 1), ext(d);
  for (size_t k = d - 1; k > 0; --k) stride[k - 1] = stride[k] * shape[k];
  for (size_t k = 0; k < d; ++k) ext[k] = place.box[k].second - place.box[k].first;
  std::vector<int64_t> idx(d);
  for (int64_t i = place.flat_begin; i < place.flat_end;) {
    int64_t rest = i, off = 0;
    for (size_t k = d; k-- > 0;) {
      idx[k] = rest % ext[k];
      rest /= ext[k];
      off += (place.box[k].first + idx[k]) * stride[k];
    }
    const int64_t len = std::min(place.flat_end - i, ext[d - 1] - idx[d - 1]);
    fn(off, i - place.flat_begin, len);
    i += len;
  }
}

// Elements of the box; -1 when a side is negative or the product overflows (a malformed piece).
int64_t box_volume(const PiecePlace& p) {
  int64_t v = 1;
  for (const auto& [b, e] : p.box) {
    const auto side = sub_no_overflow<int64_t>(e, b);
    const auto next = side && *side >= 0 ? mul_no_overflow<int64_t>(v, *side) : std::nullopt;
    if (!next) return -1;
    v = *next;
  }
  return v;
}

// Elements of a tensor of `shape` (dimensions already checked non-negative); throws on overflow.
int64_t checked_numel(const Shape& shape, const std::string& what) {
  int64_t n = 1;
  for (int64_t d : shape) n = checked_mul<int64_t>(n, d, what);
  return n;
}

std::string box_text(const PiecePlace& p) {
  std::string s = "[";
  for (size_t k = 0; k < p.box.size(); ++k) s += str(k ? ", " : "", p.box[k].first, ":", p.box[k].second);
  return s + str("] elements ", p.flat_begin, ":", p.flat_end);
}

std::string shape_text(const Shape& s) {
  std::string t = "[";
  for (size_t k = 0; k < s.size(); ++k) t += str(k ? ", " : "", s[k]);
  return t + "]";
}

// Typed access to the manifest's JSON with messages naming the key.
struct Fields {
  const std::string& name;
  const json& get(const json& j, const char* key, const std::string& where) const {
    GANNET_CHECK(j.is_object() && j.contains(key), name, ": malformed manifest: ", where, " has no '", key, "'");
    return j.at(key);
  }
  // An integer in [lo, hi]; one beyond int64 (read as unsigned) is out of range, not wrapped.
  int64_t integer(const json& j, const char* key, const std::string& where,
                  int64_t lo = std::numeric_limits<int64_t>::min(), int64_t hi = std::numeric_limits<int64_t>::max()) const {
    const json& v = get(j, key, where);
    GANNET_CHECK(v.is_number_integer(), name, ": malformed manifest: ", where, ".", key, " is not an integer");
    const bool fits = !v.is_number_unsigned() || v.get<uint64_t>() <= (uint64_t)std::numeric_limits<int64_t>::max();
    GANNET_CHECK(fits && v.get<int64_t>() >= lo && v.get<int64_t>() <= hi, name, ": ", where, ".", key,
                 " must be in [", lo, ", ", hi, "], got ", v.dump());
    return v.get<int64_t>();
  }
  // The same for a value held in an int (a rank, a degree): never wrapped into it.
  int small(const json& j, const char* key, const std::string& where, int lo = 0) const {
    return (int)integer(j, key, where, lo, std::numeric_limits<int>::max());
  }
  std::string text(const json& j, const char* key, const std::string& where) const {
    const json& v = get(j, key, where);
    GANNET_CHECK(v.is_string(), name, ": malformed manifest: ", where, ".", key, " is not a string");
    return v.get<std::string>();
  }
  const json& array(const json& j, const char* key, const std::string& where) const {
    const json& v = get(j, key, where);
    GANNET_CHECK(v.is_array(), name, ": malformed manifest: ", where, ".", key, " is not an array");
    return v;
  }
  std::pair<int64_t, int64_t> range(const json& v, const std::string& where) const {
    GANNET_CHECK(v.is_array() && v.size() == 2 && v[0].is_number_integer() && v[1].is_number_integer(), name,
                 ": malformed manifest: ", where, " is not a [begin, end] pair of integers");
    return {v[0].get<int64_t>(), v[1].get<int64_t>()};
  }
};

json place_to_json(const PiecePlace& p) {
  json box = json::array();
  for (const auto& [b, e] : p.box) box.push_back({b, e});
  json j{{"box", box}};
  if (p.flat_begin != 0 || p.flat_end != box_volume(p)) j["flat"] = {p.flat_begin, p.flat_end};
  return j;
}

fs::path dir_of_manifest(const std::string& manifest) {
  fs::path d = fs::path(manifest).parent_path();
  return d.empty() ? fs::path(".") : d;
}
}  // namespace

PiecePlace whole_place(const Shape& shape) {
  PiecePlace p;
  for (int64_t n : shape) p.box.emplace_back(0, n);
  p.flat_begin = 0;
  p.flat_end = shape_numel(shape);
  return p;
}

std::string manifest_to_json(const Manifest& m) {
  json tensors = json::array();
  for (const ManifestTensor& t : m.tensors) {
    json pieces = json::array();
    for (const ManifestPiece& p : t.pieces) {
      json j = place_to_json(p.place);
      j["file"] = p.file;
      j["name"] = p.name;
      pieces.push_back(j);
    }
    tensors.push_back({{"name", t.name}, {"dtype", "F32"}, {"shape", t.shape}, {"pieces", pieces}});
  }
  json shards = json::array();
  for (const ShardFile& s : m.shards) shards.push_back({{"file", s.file}, {"rank", s.rank}, {"bytes", s.bytes}});
  json state{{"step", m.state.step},
             {"rng", m.state.rng},
             {"train_config", m.state.train_config}};
  if (m.optim_step >= 0) state["optim_step"] = m.optim_step;
  const ShardedLayout& l = m.layout;
  json j{{"format", kFormat},
         {"version", m.version},
         {"model_config", gpt_config_to_json(m.model)},
         {"layout", {{"world", l.world}, {"tensor", l.tensor}, {"expert", l.expert}, {"data", l.data},
                     {"zero_stage", l.zero_stage}}},
         {"train_state", state},
         {"shards", shards},
         {"tensors", tensors}};
  return j.dump(1) + "\n";
}

namespace {
// The manifest's fields, checked for types but not yet for consistency (validate_manifest).
Manifest parse_manifest_fields(const std::string& text, const std::string& name) {
  const json root = parse_json_text(text, name);
  Fields f{name};
  GANNET_CHECK(root.is_object() && root.contains("format") && root["format"] == kFormat, name,
               ": not a gannet sharded checkpoint manifest (no \"format\": \"", kFormat, "\")");
  Manifest m;
  m.version = f.small(root, "version", "manifest");
  GANNET_CHECK(m.version == kShardedCheckpointVersion, name, ": manifest version ", m.version,
               " is not supported (this gannet reads version ", kShardedCheckpointVersion, ")");
  try {
    m.model = read_gpt_config(JsonReader(f.get(root, "model_config", "manifest"), "model_config"));
    m.model.validate();
  } catch (const Error& e) {
    fail(str(name, ": ", e.what()));
  }
  const json& layout = f.get(root, "layout", "manifest");
  m.layout.world = f.small(layout, "world", "layout", 1);
  m.layout.tensor = f.small(layout, "tensor", "layout", 1);
  m.layout.expert = f.small(layout, "expert", "layout", 1);
  m.layout.data = f.small(layout, "data", "layout", 1);
  m.layout.zero_stage = f.small(layout, "zero_stage", "layout");
  const json& st = f.get(root, "train_state", "manifest");
  m.state.step = f.integer(st, "step", "train_state", 0);
  const json& rng = f.get(st, "rng", "train_state");
  GANNET_CHECK(rng.is_array() && rng.size() == 4, name, ": malformed manifest: train_state.rng is not 4 integers");
  for (size_t i = 0; i < 4; ++i) {
    GANNET_CHECK(rng[i].is_number_unsigned() || (rng[i].is_number_integer() && rng[i].get<int64_t>() >= 0), name,
                 ": malformed manifest: train_state.rng is not 4 integers");
    m.state.rng[i] = rng[i].get<uint64_t>();
  }
  m.state.train_config = f.text(st, "train_config", "train_state");
  m.optim_step = st.contains("optim_step") ? f.integer(st, "optim_step", "train_state", 0) : -1;
  for (const json& s : f.array(root, "shards", "manifest")) {
    ShardFile sf{f.text(s, "file", "shards[]"), f.small(s, "rank", "shards[]"), f.integer(s, "bytes", "shards[]", 0)};
    m.shards.push_back(sf);
  }
  for (const json& t : f.array(root, "tensors", "manifest")) {
    ManifestTensor mt;
    mt.name = f.text(t, "name", "tensors[]");
    const std::string where = "tensor '" + escape_bytes(mt.name) + "'";
    GANNET_CHECK(f.text(t, "dtype", where) == "F32", name, ": ", where, " has dtype ", t["dtype"].dump(),
                 " (sharded checkpoints hold F32)");
    for (const json& n : f.array(t, "shape", where)) {
      GANNET_CHECK(n.is_number_integer() && n.get<int64_t>() >= 0, name, ": malformed manifest: ", where,
                   ".shape is not a list of sizes");
      mt.shape.push_back(n.get<int64_t>());
    }
    for (const json& p : f.array(t, "pieces", where)) {
      ManifestPiece mp;
      mp.file = f.text(p, "file", where + ".pieces[]");
      mp.name = f.text(p, "name", where + ".pieces[]");
      for (const json& r : f.array(p, "box", where + ".pieces[]")) mp.place.box.push_back(f.range(r, where + " box"));
      if (p.contains("flat")) {
        auto [b, e] = f.range(p["flat"], where + " flat");
        mp.place.flat_begin = b;
        mp.place.flat_end = e;
      } else {
        mp.place.flat_begin = 0;
        mp.place.flat_end = box_volume(mp.place);
      }
      mt.pieces.push_back(std::move(mp));
    }
    m.tensors.push_back(std::move(mt));
  }
  return m;
}

// Every shard file present with the size the manifest records, so that the sizes the manifest
// declares are bounded by what is on disk before anything is allocated from them.
void check_shard_files(const Manifest& m, const std::string& mp) {
  const fs::path dir = dir_of_manifest(mp);
  for (const ShardFile& s : m.shards) {
    const fs::path f = dir / s.file;
    std::error_code ec;
    GANNET_CHECK(fs::is_regular_file(f, ec), mp, ": missing shard file ", f.string(), " (rank ", s.rank, ")");
    const int64_t bytes = (int64_t)fs::file_size(f, ec);
    GANNET_CHECK(bytes == s.bytes, mp, ": shard file ", f.string(), " is ", bytes, " bytes, the manifest says ",
                 s.bytes, " (from another save?)");
  }
}
}  // namespace

Manifest parse_manifest(const std::string& text, const std::string& name) {
  Manifest m = parse_manifest_fields(text, name);
  validate_manifest(m, name);
  return m;
}

void validate_manifest(const Manifest& m, const std::string& name) {
  std::set<std::string> files;
  for (const ShardFile& s : m.shards) {
    GANNET_CHECK(files.insert(s.file).second, name, ": shard file ", escape_bytes(s.file), " is listed twice");
    GANNET_CHECK(!s.file.empty() && s.file[0] != '/' && s.file.find("..") == std::string::npos, name, ": shard file '",
                 escape_bytes(s.file), "' is not a path inside the checkpoint directory");
  }
  // The tensors' elements are bounded by the bytes of the shard files that hold them (f32 each),
  // before any coverage map is allocated for them.
  int64_t shard_bytes = 0, tensor_bytes = 0;
  for (const ShardFile& s : m.shards) {
    GANNET_CHECK(s.bytes >= 0, name, ": shard file ", s.file, " has negative size ", s.bytes);
    shard_bytes = checked_add<int64_t>(shard_bytes, s.bytes, name + ": shard sizes");
  }
  for (const ManifestTensor& t : m.tensors) {
    const int64_t n = checked_numel(t.shape, str(name, ": tensor '", escape_bytes(t.name), "' ", shape_text(t.shape)));
    tensor_bytes = checked_add<int64_t>(tensor_bytes, checked_mul<int64_t>(n, 4, name + ": tensor sizes"),
                                        name + ": tensor sizes");
  }
  GANNET_CHECK(tensor_bytes <= shard_bytes, name, ": the tensors hold ", tensor_bytes,
               " bytes, more than the shard files' ", shard_bytes);
  std::set<std::string> names;
  for (const ManifestTensor& t : m.tensors) {
    GANNET_CHECK(names.insert(t.name).second, name, ": tensor '", escape_bytes(t.name), "' is listed twice");
    const int64_t n = shape_numel(t.shape);
    std::vector<uint8_t> covered((size_t)n, 0);
    for (size_t k = 0; k < t.pieces.size(); ++k) {
      const ManifestPiece& p = t.pieces[k];
      const std::string what = str(name, ": tensor '", escape_bytes(t.name), "' ", shape_text(t.shape), ": piece ", k,
                                   " (", escape_bytes(p.file), " '", escape_bytes(p.name), "', ", box_text(p.place), ")");
      GANNET_CHECK(files.count(p.file), what, " names a shard file that the manifest does not list");
      GANNET_CHECK(p.place.box.size() == t.shape.size(), what, " has ", p.place.box.size(),
                   " dimensions, the tensor ", t.shape.size());
      for (size_t d = 0; d < t.shape.size(); ++d)
        GANNET_CHECK(0 <= p.place.box[d].first && p.place.box[d].first < p.place.box[d].second &&
                         p.place.box[d].second <= t.shape[d],
                     what, " lies outside the tensor in dimension ", d);
      GANNET_CHECK(0 <= p.place.flat_begin && p.place.flat_begin < p.place.flat_end &&
                       p.place.flat_end <= box_volume(p.place),
                   what, " has an element range outside its box");
      for_each_run(p.place, t.shape, [&](int64_t off, int64_t, int64_t len) {
        uint8_t* run = covered.data() + off;
        const uint8_t* seen = std::find(run, run + len, uint8_t{1});
        GANNET_CHECK(seen == run + len, what, " overlaps another piece at element ", seen - covered.data());
        std::memset(run, 1, (size_t)len);
      });
    }
    int64_t missing = 0, first = -1;
    for (int64_t i = 0; i < n; ++i)
      if (!covered[(size_t)i]) {
        if (first < 0) first = i;
        ++missing;
      }
    GANNET_CHECK(missing == 0, name, ": tensor '", escape_bytes(t.name), "' ", shape_text(t.shape), ": ", missing, " of ", n,
                 " elements are in no piece (the first is element ", first, ")");
  }
}

void write_manifest(const std::string& path, const Manifest& m) {
  validate_manifest(m, path);
  write_file_atomic(path, manifest_to_json(m));
}

bool is_sharded_checkpoint(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return fs::is_regular_file(fs::path(path) / kManifestFile, ec);
  return fs::path(path).extension() == ".json";
}

std::string manifest_path(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return (fs::path(path) / kManifestFile).string();
  return path;
}

Manifest read_manifest(const std::string& path) {
  const std::string mp = manifest_path(path);
  Manifest m = parse_manifest_fields(read_file(mp), mp);
  check_shard_files(m, mp);
  validate_manifest(m, mp);
  return m;
}

ShardedCheckpoint read_sharded_checkpoint(const std::string& path, const std::function<bool(const std::string&)>& want) {
  const std::string mp = manifest_path(path);
  ShardedCheckpoint out;
  out.manifest = read_manifest(mp);
  const fs::path dir = dir_of_manifest(mp);
  std::map<std::string, SafeTensors> open;  // shard files: checked by read_manifest
  for (const ManifestTensor& t : out.manifest.tensors) {
    if (want && !want(t.name)) continue;
    Tensor whole = Tensor::empty(t.shape);
    for (const ManifestPiece& p : t.pieces) {
      auto it = open.find(p.file);
      if (it == open.end()) it = open.emplace(p.file, SafeTensors::open((dir / p.file).string())).first;
      const SafeTensors& f = it->second;
      GANNET_CHECK(f.has(p.name), f.path(), ": no tensor '", p.name, "' (a piece of '", t.name, "' in ", mp, ")");
      Tensor piece = f.get(p.name);
      GANNET_CHECK(piece.dtype() == DType::f32 && piece.numel() == p.place.numel(), f.path(), ": tensor '", p.name,
                   "' is ", piece.describe(), ", the manifest's piece of '", t.name, "' needs ", p.place.numel(),
                   " f32 elements");
      scatter_piece(piece.f32(), p.place, t.shape, whole.f32());
    }
    out.tensors.emplace(t.name, std::move(whole));
  }
  return out;
}

void scatter_piece(const float* piece, const PiecePlace& place, const Shape& shape, float* whole) {
  for_each_run(place, shape, [&](int64_t off, int64_t src, int64_t len) {
    std::memcpy(whole + off, piece + src, (size_t)len * sizeof(float));
  });
}

std::string shard_directory_name(int64_t step, const std::string& tag) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%08lld-", (long long)step);
  return buf + tag;
}

std::string shard_file_name(int rank) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "rank-%05d.safetensors", rank);
  return buf;
}

}  // namespace gannet::io
