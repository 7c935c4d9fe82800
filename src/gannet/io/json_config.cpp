#include "gannet/io/json_config.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "gannet/core/error.h"
#include "gannet/core/atomic_file.h"

namespace gannet::io {

using json = nlohmann::json;

namespace {
// Follows the parser through the document to catch a key given twice in one object (nlohmann
// keeps the last one silently), naming it by its path: "optimizer.params.lr", "shards[2].file".
class DuplicateKeyCheck {
 public:
  explicit DuplicateKeyCheck(const std::string& name) : name_(name) {}

  bool operator()(int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start: frames_.push_back({true}); break;
      case json::parse_event_t::array_start: frames_.push_back({false}); break;
      case json::parse_event_t::key: {
        Frame& f = frames_.back();
        f.key = parsed.get<std::string>();
        GANNET_CHECK(f.keys.insert(f.key).second, name_, ": duplicate key '", path(), "'");
        break;
      }
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        frames_.pop_back();
        element_done();
        break;
      case json::parse_event_t::value: element_done(); break;
    }
    return true;
  }

 private:
  struct Frame {
    bool object;
    std::set<std::string> keys{};
    std::string key{};
    size_t index = 0;
  };
  void element_done() {
    if (!frames_.empty() && !frames_.back().object) ++frames_.back().index;
  }
  std::string path() const {
    std::string p;
    for (const Frame& f : frames_) p += f.object ? (p.empty() ? "" : ".") + f.key : str("[", f.index, "]");
    return p;
  }
  const std::string& name_;
  std::vector<Frame> frames_;
};
}  // namespace

json parse_json_text(const std::string& text, const std::string& name) {
  try {
    return json::parse(text, DuplicateKeyCheck(name));
  } catch (const json::parse_error& e) {
    // e.byte is the 1-based index of the last character read; report its line and column.
    size_t pos = std::min(e.byte > 0 ? e.byte - 1 : 0, text.size());
    size_t line = 1 + (size_t)std::count(text.begin(), text.begin() + (std::ptrdiff_t)pos, '\n');
    size_t nl = pos == 0 ? std::string::npos : text.rfind('\n', pos - 1);
    size_t column = nl == std::string::npos ? pos + 1 : pos - nl;
    // nlohmann's message: "[json.exception.parse_error.101] parse error at line 1, column 2: <detail>"
    std::string detail = e.what();
    size_t at = detail.find("parse error");
    if (at != std::string::npos) {
      size_t colon = detail.find(": ", at);
      if (colon != std::string::npos) detail = detail.substr(colon + 2);
    }
    fail(str(name, ": parse error at line ", line, ", column ", column, ": ", detail));
  } catch (const json::exception& e) {  // a number too large for a double (out_of_range.406)
    std::string detail = e.what();
    const size_t end = detail.find("] ");
    fail(str(name, ": ", end == std::string::npos ? detail : detail.substr(end + 2)));
  }
}

json parse_json_file(const std::string& path) { return parse_json_text(read_file(path), path); }

struct JsonReader::State {
  std::set<std::string> known;  // keys some getter asked for, present or not
  std::vector<JsonReader> children;
};

JsonReader::JsonReader(json object, std::string context, JsonNulls nulls)
    : object_(std::move(object)), context_(std::move(context)), nulls_(nulls), state_(std::make_shared<State>()) {
  if (object_.is_null() && nulls_ == JsonNulls::as_absent) object_ = json::object();
  GANNET_CHECK(object_.is_object(), context_.empty() ? "config" : context_, ": expected object, got ",
               object_.type_name());
}

bool JsonReader::has(const std::string& key) const {
  auto it = object_.find(key);
  return it != object_.end() && !(it->is_null() && nulls_ == JsonNulls::as_absent);
}

const json* JsonReader::lookup(const std::string& key) const {
  state_->known.insert(key);
  auto it = object_.find(key);
  if (it == object_.end()) return nullptr;
  if (it->is_null()) {
    if (nulls_ == JsonNulls::as_absent) return nullptr;
    fail(str(where(key), ": null is not a value (leave the key out for the default)"));
  }
  return &*it;
}

std::string JsonReader::where(const std::string& key) const {
  return context_.empty() ? key : context_ + "." + key;
}

static std::string got(const json& v) {
  if (v.is_number() || v.is_boolean()) return str(v.type_name(), " ", v.dump());
  return v.type_name();
}

static bool to_int(const json& v, int64_t& out) {
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > (uint64_t)INT64_MAX) return false;
    out = (int64_t)v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer()) {
    out = v.get<int64_t>();
    return true;
  }
  if (v.is_number_float()) {  // 1e6 is a fine way to write an integer
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.2e18) {
      out = (int64_t)d;
      return true;
    }
  }
  return false;
}

// "must be in [1, 2147483647], got 4294967297"; a range open above reads "must be >= 1".
static std::string int_range_message(const json& v, int64_t lo, int64_t hi) {
  const bool to_max = hi == std::numeric_limits<int64_t>::max() || hi == std::numeric_limits<int32_t>::max();
  const bool below = v.is_number() && v.get<double>() < (double)lo;
  if (to_max && below) return str("must be >= ", lo, ", got ", v.dump());
  return str("must be in [", lo, ", ", hi, "], got ", v.dump());
}

// An integer read from v checked against [lo, hi]; `where` names it in messages.
static int64_t checked_int(const json& v, int64_t lo, int64_t hi, const std::string& where) {
  int64_t out;
  if (!to_int(v, out)) {
    // A whole number beyond int64 is out of range rather than of the wrong type.
    if (v.is_number_unsigned() || (v.is_number_float() && v.get<double>() == std::floor(v.get<double>())))
      fail(str(where, ": ", int_range_message(v, lo, hi)));
    fail(str(where, ": expected integer, got ", got(v)));
  }
  if (out < lo || out > hi) fail(str(where, ": ", int_range_message(v, lo, hi)));
  return out;
}

int64_t JsonReader::get_int64(const std::string& key, int64_t default_value, int64_t lo, int64_t hi) const {
  const json* v = lookup(key);
  return v ? checked_int(*v, lo, hi, where(key)) : default_value;
}

uint64_t JsonReader::get_uint64(const std::string& key, uint64_t default_value) const {
  const json* v = lookup(key);
  if (!v) return default_value;
  if (v->is_number_unsigned()) return v->get<uint64_t>();
  if (v->is_number_integer() && v->get<int64_t>() >= 0) return (uint64_t)v->get<int64_t>();
  return (uint64_t)checked_int(*v, 0, std::numeric_limits<int64_t>::max(), where(key));
}

// A number read from v checked against `range`.
static double checked_double(const json& v, const NumberRange& range, const std::string& where) {
  if (!v.is_number()) fail(str(where, ": expected number, got ", got(v)));
  const double d = v.get<double>();
  if (!range.contains(d)) fail(str(where, ": ", out_of_range_message(range, v.dump())));
  return d;
}

double JsonReader::get_double(const std::string& key, double default_value, const NumberRange& range) const {
  const json* v = lookup(key);
  return v ? checked_double(*v, range, where(key)) : default_value;
}

float JsonReader::get_float(const std::string& key, float default_value, const NumberRange& range) const {
  const json* v = lookup(key);
  if (!v) return default_value;
  const double d = checked_double(*v, range, where(key));
  const float f = (float)d;
  // In the float too: 1e39 becomes inf, 1e-50 becomes 0 (which may leave an open range).
  if (!range.contains(f)) fail(str(where(key), ": ", v->dump(), " is out of the range of a float (", range.describe(), ")"));
  return f;
}

bool JsonReader::get_bool(const std::string& key, bool default_value) const {
  const json* v = lookup(key);
  if (!v) return default_value;
  if (!v->is_boolean()) fail(str(where(key), ": expected boolean, got ", got(*v)));
  return v->get<bool>();
}

std::string JsonReader::get_string(const std::string& key, const std::string& default_value) const {
  const json* v = lookup(key);
  if (!v) return default_value;
  if (!v->is_string()) fail(str(where(key), ": expected string, got ", got(*v)));
  return v->get<std::string>();
}

std::vector<int64_t> JsonReader::get_int_list(const std::string& key, const std::vector<int64_t>& default_value,
                                              int64_t lo, int64_t hi) const {
  const json* v = lookup(key);
  if (!v) return default_value;
  if (!v->is_array()) fail(str(where(key), ": expected list of integers, got ", got(*v)));
  std::vector<int64_t> out;
  for (size_t i = 0; i < v->size(); ++i) out.push_back(checked_int((*v)[i], lo, hi, str(where(key), "[", i, "]")));
  return out;
}

std::vector<double> JsonReader::get_double_list(const std::string& key, const std::vector<double>& default_value,
                                               const NumberRange& range) const {
  const json* v = lookup(key);
  if (!v) return default_value;
  if (!v->is_array()) fail(str(where(key), ": expected list of numbers, got ", got(*v)));
  std::vector<double> out;
  for (size_t i = 0; i < v->size(); ++i) out.push_back(checked_double((*v)[i], range, str(where(key), "[", i, "]")));
  return out;
}

std::vector<std::string> JsonReader::get_string_list(const std::string& key,
                                                     const std::vector<std::string>& default_value) const {
  const json* v = lookup(key);
  if (!v) return default_value;
  if (!v->is_array()) fail(str(where(key), ": expected list of strings, got ", got(*v)));
  std::vector<std::string> out;
  for (size_t i = 0; i < v->size(); ++i) {
    if (!(*v)[i].is_string()) fail(str(where(key), "[", i, "]: expected string, got ", got((*v)[i])));
    out.push_back((*v)[i].get<std::string>());
  }
  return out;
}

JsonReader JsonReader::child(const std::string& key) const {
  const json* v = lookup(key);
  if (v && !v->is_object()) fail(str(where(key), ": expected object, got ", got(*v)));
  JsonReader r(v ? *v : json::object(), where(key), nulls_);
  state_->children.push_back(r);
  return r;
}

static size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

void JsonReader::finish() const {
  for (auto it = object_.begin(); it != object_.end(); ++it) {
    const std::string& key = it.key();
    if (state_->known.count(key)) continue;
    std::string known, best;
    size_t best_d = std::string::npos;
    for (const std::string& k : state_->known) {
      known += (known.empty() ? "" : ", ") + k;
      size_t d = edit_distance(key, k);
      if (d < best_d) best_d = d, best = k;
    }
    std::string hint;
    if (!best.empty() && best_d <= std::max<size_t>(1, key.size() / 3)) hint = str("did you mean '", best, "'? ");
    fail(str("unknown key '", key, "' in ", context_.empty() ? "config" : context_, " (", hint,
             known.empty() ? "no keys are read here" : "known: " + known, ")"));
  }
  for (const JsonReader& c : state_->children) c.finish();
}

}  // namespace gannet::io
