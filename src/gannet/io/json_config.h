// Strict reading of JSON config files into config structs: typed getters with defaults, errors
// that name the key path ("model.n_layer: expected integer, got string"), and finish(), which
// rejects keys that no getter asked for, so that a misspelt key is an error instead of a silently
// ignored setting.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace gannet::io {

// Parses a JSON file. Errors: "cannot open X: ...", "X: parse error at line L, column C: ...".
nlohmann::json parse_json_file(const std::string& path);
// The same for text already in memory; `name` stands for the file in messages.
nlohmann::json parse_json_text(const std::string& text, const std::string& name);

class JsonReader {
 public:
  // `object` must be a JSON object (or null, read as an empty object); `context` names it in
  // messages ("model", "optimizer.params").
  JsonReader(nlohmann::json object, std::string context);

  const std::string& context() const { return context_; }
  // Whether the key is present (and not null). Does not count as reading it.
  bool has(const std::string& key) const;

  // Each getter returns the default when the key is absent or null, and throws on another type.
  int64_t get_int(const std::string& key, int64_t default_value) const;  // 1e3 is accepted, 1.5 is not
  double get_double(const std::string& key, double default_value) const;
  bool get_bool(const std::string& key, bool default_value) const;
  std::string get_string(const std::string& key, const std::string& default_value) const;
  std::vector<int64_t> get_int_list(const std::string& key, const std::vector<int64_t>& default_value) const;
  std::vector<double> get_double_list(const std::string& key, const std::vector<double>& default_value) const;
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
  const nlohmann::json* lookup(const std::string& key) const;  // marks the key as known
  std::string where(const std::string& key) const;
  nlohmann::json object_;
  std::string context_;
  std::shared_ptr<State> state_;
};

}  // namespace gannet::io
