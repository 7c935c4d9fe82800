#include "gannet/infer/request_parser.h"

#include <algorithm>
#include <cmath>

#include "gannet/core/error.h"

namespace gannet::infer {

using json = nlohmann::json;

namespace {

// nlohmann's message without its "[json.exception.<kind>.<id>] " prefix.
std::string json_message(const json::exception& e) {
  const std::string what = e.what();
  const size_t end = what.rfind("] ", what.find(' '));
  return end == std::string::npos ? what : what.substr(end + 2);
}

}  // namespace

// Any failure is an error (a number too large for a double, 1e999, is one too: nlohmann reports it
// as out_of_range, not as a parse error, and it escaped as an internal error); one inside a field's
// value names the field, from the keys whose values the parser is in ("stream_options.include_usage").
json parse_request_body(const std::string& body) {
  std::vector<std::string> keys;  // keys[d - 1]: the key at depth d whose value is being parsed
  auto track = [&](int depth, json::parse_event_t event, json& parsed) {
    const size_t d = (size_t)depth;
    if (event == json::parse_event_t::key) {
      keys.resize(d - 1);
      keys.push_back(parsed.get<std::string>());
    } else if (event == json::parse_event_t::value && d > 0 && keys.size() == d) {  // 0: a top-level value
      keys.pop_back();  // a member's scalar value is complete
    } else if (event == json::parse_event_t::object_end || event == json::parse_event_t::array_end) {
      keys.resize(std::min(keys.size(), d == 0 ? 0 : d - 1));  // so is a member's object or array
    }
    return true;
  };
  json j;
  try {
    j = json::parse(body, track);
  } catch (const json::exception& e) {
    std::string field;
    for (const std::string& k : keys)
      if (!k.empty()) field += (field.empty() ? "" : ".") + k;
    if (field.empty()) fail(str("invalid JSON in the request body: ", json_message(e)));
    throw InvalidField(field, str("invalid JSON in field '", field, "': ", json_message(e)));
  }
  GANNET_CHECK(j.is_object(), "the request body must be a JSON object, got ", j.type_name());
  return j;
}

namespace {

// Typed field readers: a wrong type is an error naming the field.
double number_field(const json& v, const std::string& name) {
  GANNET_CHECK(v.is_number(), "field '", name, "' must be a number, got ", v.type_name());
  return v.get<double>();
}
int64_t integer_field(const json& v, const std::string& name) {
  GANNET_CHECK(v.is_number_integer(), "field '", name, "' must be an integer, got ", v.type_name());
  GANNET_CHECK(!v.is_number_unsigned() || v.get<uint64_t>() <= (uint64_t)INT64_MAX, "field '", name,
               "' is out of range");
  return v.get<int64_t>();
}
bool bool_field(const json& v, const std::string& name) {
  GANNET_CHECK(v.is_boolean(), "field '", name, "' must be a boolean, got ", v.type_name());
  return v.get<bool>();
}
std::string string_field(const json& v, const std::string& name) {
  GANNET_CHECK(v.is_string(), "field '", name, "' must be a string, got ", v.type_name());
  return v.get<std::string>();
}
float float_field(const json& v, const std::string& name) {
  double d = number_field(v, name);
  GANNET_CHECK(std::abs(d) <= 1e30, "field '", name, "' is out of range");
  return (float)d;
}

std::vector<int32_t> token_array(const json& v, const std::string& name) {
  std::vector<int32_t> ids;
  ids.reserve(v.size());
  for (const json& e : v) {
    GANNET_CHECK(e.is_number_integer(), "field '", name, "' must hold integer token ids, got ", e.type_name());
    const bool in_range = e.is_number_unsigned() ? e.get<uint64_t>() <= (uint64_t)INT32_MAX
                                                 : e.get<int64_t>() >= 0 && e.get<int64_t>() <= INT32_MAX;
    GANNET_CHECK(in_range, "field '", name, "': token id ", e.dump(), " is out of range");
    ids.push_back((int32_t)e.get<int64_t>());
  }
  return ids;
}

bool all_integers(const json& v) {
  for (const json& e : v)
    if (!e.is_number_integer()) return false;
  return true;
}

std::vector<int32_t> parse_prompt(const json& v, const data::TextTokenizer& tok) {
  if (v.is_string()) return tok.encode(v.get<std::string>());
  GANNET_CHECK(v.is_array(), "field 'prompt' must be a string or an array of token ids, got ", v.type_name());
  if (all_integers(v)) return token_array(v, "prompt");  // [] too: an empty prompt
  GANNET_CHECK(v.size() == 1, "field 'prompt': ", v.size(),
               " prompts in one request are not supported; send one prompt per request");
  const json& one = v[0];
  if (one.is_string()) return tok.encode(one.get<std::string>());
  GANNET_CHECK(one.is_array() && all_integers(one), "field 'prompt' must be a string or an array of token ids");
  return token_array(one, "prompt");
}

// `field` is set to the field being read, for the error.
CompletionRequest parse_completion_fields(const json& body, const data::TextTokenizer& tok, uint64_t default_seed,
                                          std::string& field) {
  CompletionRequest c;
  GenerationRequest& g = c.gen;
  g.sampling.seed = default_seed;
  bool has_prompt = false;
  for (const auto& [key, v] : body.items()) {
    field = key;
    if (key == "prompt") {
      g.prompt = parse_prompt(v, tok);
      has_prompt = true;
    } else if (key == "max_tokens") {
      if (!v.is_null()) g.max_tokens = integer_field(v, key), c.max_tokens_given = true;
    } else if (key == "temperature") {
      if (!v.is_null()) g.sampling.temperature = float_field(v, key);
    } else if (key == "top_p") {
      if (!v.is_null()) g.sampling.top_p = float_field(v, key);
    } else if (key == "top_k") {
      if (!v.is_null()) g.sampling.top_k = integer_field(v, key);
    } else if (key == "repetition_penalty") {
      if (!v.is_null()) g.sampling.repetition_penalty = float_field(v, key);
    } else if (key == "seed") {
      if (!v.is_null()) {
        GANNET_CHECK(v.is_number_integer() && (v.is_number_unsigned() || v.get<int64_t>() >= 0),
                     "field 'seed' must be a non-negative integer, got ", v.dump());
        g.sampling.seed = v.get<uint64_t>();
      }
    } else if (key == "stop") {
      if (v.is_string()) {
        g.stop = {v.get<std::string>()};
      } else if (v.is_array()) {
        for (const json& s : v) g.stop.push_back(string_field(s, "stop"));
      } else {
        GANNET_CHECK(v.is_null(), "field 'stop' must be a string or an array of strings, got ", v.type_name());
      }
    } else if (key == "stream") {
      if (!v.is_null()) c.stream = bool_field(v, key);
    } else if (key == "stream_options") {
      if (v.is_null()) continue;
      GANNET_CHECK(v.is_object(), "field 'stream_options' must be an object, got ", v.type_name());
      for (const auto& [k2, v2] : v.items()) {
        GANNET_CHECK(k2 == "include_usage", "field 'stream_options.", k2, "' is not supported");
        c.include_usage = bool_field(v2, "stream_options.include_usage");
      }
    } else if (key == "ignore_eos") {
      if (!v.is_null()) g.ignore_eos = bool_field(v, key);
    } else if (key == "model" || key == "user") {
      if (!v.is_null()) string_field(v, key);
    } else if (key == "n" || key == "best_of") {
      GANNET_CHECK(v.is_null() || integer_field(v, key) == 1, "field '", key,
                   "': only 1 completion per request is supported");
    } else if (key == "logprobs" || key == "suffix") {
      GANNET_CHECK(v.is_null(), "field '", key, "' is not supported (null only)");
    } else if (key == "logit_bias") {
      GANNET_CHECK(v.is_null() || (v.is_object() && v.empty()),
                   "field 'logit_bias' is not supported (null or {} only)");
    } else if (key == "echo") {
      GANNET_CHECK(v.is_null() || !bool_field(v, key), "field 'echo' is not supported (false only)");
    } else if (key == "frequency_penalty" || key == "presence_penalty") {
      GANNET_CHECK(v.is_null() || number_field(v, key) == 0.0, "field '", key,
                   "' is not supported (0 only); use repetition_penalty");
    } else {
      fail(str("unknown field '", key, "'"));
    }
    g.sampling.validate();  // a bad value is this field's: the others were valid
  }
  field = "prompt";
  GANNET_CHECK(has_prompt, "field 'prompt' is required");
  if (g.prompt.empty()) {
    GANNET_CHECK(tok.eos_id() >= 0, "the prompt is empty");
    g.prompt = {tok.eos_id()};  // GPT-2's convention for unconditional text
  }
  field = "stream_options";
  GANNET_CHECK(c.stream || !c.include_usage, "field 'stream_options' needs \"stream\": true");
  return c;
}

}  // namespace

CompletionRequest parse_completion(const json& body, const data::TextTokenizer& tok, uint64_t default_seed) {
  std::string field;
  try {
    return parse_completion_fields(body, tok, default_seed, field);
  } catch (const InvalidField&) {
    throw;
  } catch (const Error& e) {
    throw InvalidField(field, e.what());
  }
}

std::string parse_tokenize_request(const json& body) {
  std::string content;
  bool has = false;
  for (const auto& [key, v] : body.items()) {
    GANNET_CHECK(key == "content", "unknown field '", key, "'");
    content = string_field(v, key);
    has = true;
  }
  GANNET_CHECK(has, "field 'content' is required");
  return content;
}

std::vector<int32_t> parse_detokenize_request(const json& body) {
  std::vector<int32_t> ids;
  bool has = false;
  for (const auto& [key, v] : body.items()) {
    GANNET_CHECK(key == "tokens", "unknown field '", key, "'");
    GANNET_CHECK(v.is_array(), "field 'tokens' must be an array of token ids, got ", v.type_name());
    ids = token_array(v, key);
    has = true;
  }
  GANNET_CHECK(has, "field 'tokens' is required");
  return ids;
}

}  // namespace gannet::infer
