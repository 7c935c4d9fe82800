// Strict reading of JSON config files into config structs: typed getters with defaults, errors
// that name the key path ("model.n_layer: expected integer, got string"), and finish(), which
// rejects keys that no getter asked for, so that a misspelt key is an error instead of a silently
// ignored setting. Every number is read with the range it may take, in the type it is used in
// ("optimizer.params.eps: must be > 0, got -1"; "parallel.tensor: must be in [1, 2147483647], got
// 4294967297"), a key given as null is an error rather than the default, and a file that gives a
// key twice in one object is rejected when parsed.
#pragma once
#include <cstdint>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <vector>

#include "gannet/core/number_range.h"

namespace gannet::io {

// Parses a JSON file. Errors: "cannot open X: ...", "X: parse error at line L, column C: ...",
// "X: duplicate key 'optimizer.params.lr'".
nlohmann::json parse_json_file(const std::string& path);
// The same for text already in memory; `name` stands for the file in messages.
nlohmann::json parse_json_text(const std::string& text, const std::string& name);

// What a key given as null means: an error (gannet's own configs), or the key's absence (files
// written by other tools, such as Hugging Face's config.json, where null means "the default").
enum class JsonNulls { reject, as_absent };

class JsonReader {
 public:
  // `object` must be a JSON object (with JsonNulls::as_absent, null reads as an empty one);
  // `context` names it in messages ("model", "optimizer.params").
  JsonReader(nlohmann::json object, std::string context, JsonNulls nulls = JsonNulls::reject);

  const std::string& context() const { return context_; }
  // Whether the key is present (with JsonNulls::as_absent: and not null). Does not count as reading it.
  bool has(const std::string& key) const;

  // Each getter returns the default when the key is absent, and throws naming the key on another
  // type, on null (JsonNulls::reject) and on a number outside its range.
  // Integers: 1e3 is accepted, 1.5 is not; the value must lie in [lo, hi] (by default, the type's range).
  template <class Int>
    requires std::is_integral_v<Int> && std::is_signed_v<Int>
  Int get_int(const std::string& key, Int default_value, std::type_identity_t<Int> lo = std::numeric_limits<Int>::min(),
              std::type_identity_t<Int> hi = std::numeric_limits<Int>::max()) const {
    return (Int)get_int64(key, default_value, lo, hi);
  }
  uint64_t get_uint64(const std::string& key, uint64_t default_value) const;  // seeds: [0, 2^64)
  double get_double(const std::string& key, double default_value, const NumberRange& range) const;
  // The same, also checked as a float (1e39 is out of a float's range; it would become inf).
  float get_float(const std::string& key, float default_value, const NumberRange& range) const;
  bool get_bool(const std::string& key, bool default_value) const;
  std::string get_string(const std::string& key, const std::string& default_value) const;
  std::vector<int64_t> get_int_list(const std::string& key, const std::vector<int64_t>& default_value,
                                    int64_t lo = std::numeric_limits<int64_t>::min(),
                                    int64_t hi = std::numeric_limits<int64_t>::max()) const;
  std::vector<double> get_double_list(const std::string& key, const std::vector<double>& default_value,
                                      const NumberRange& range) const;
  std::vector<std::string> get_string_list(const std::string& key,
                                           const std::vector<std::string>& default_value) const;
  // The nested object (an empty one if absent), with context "<context>.<key>".
  JsonReader child(const std::string& key) const;

  // Throws if the object has a key that no getter (or child) asked for:
  //   "unknown key 'lrr' in optimizer (did you mean 'lr'? known: betas, lr, weight_decay)".
  // Also checks every reader made by child(), recursively.
  void finish() const;

 private:
  struct State;
  int64_t get_int64(const std::string& key, int64_t default_value, int64_t lo, int64_t hi) const;
  const nlohmann::json* lookup(const std::string& key) const;  // marks the key as known
  std::string where(const std::string& key) const;
  nlohmann::json object_;
  std::string context_;
  JsonNulls nulls_;
  std::shared_ptr<State> state_;
};

}  // namespace gannet::io
