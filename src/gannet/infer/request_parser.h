// The HTTP server's request bodies, parsed and checked apart from the server itself (so that tests
// and the fuzzers reach them without a socket). The fields and their policy are server.h's; every
// problem is a gannet::Error with a one-line message naming the field (the server answers 400).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gannet/data/text_tokenizer.h"
#include "gannet/infer/scheduler.h"

namespace gannet::infer {

// The body as a JSON object; invalid JSON or another type is an error.
nlohmann::json parse_request_body(const std::string& body);

// A /v1/completions request.
struct CompletionRequest {
  GenerationRequest gen;
  bool max_tokens_given = false;
  bool stream = false;
  bool include_usage = false;
};
// The prompt is encoded with `tok`; `default_seed` stands when the request gives none.
CompletionRequest parse_completion(const nlohmann::json& body, const data::TextTokenizer& tok, uint64_t default_seed);

// /tokenize: {"content": text} -> the text.
std::string parse_tokenize_request(const nlohmann::json& body);
// /detokenize: {"tokens": [ids]} -> the ids (each in [0, 2^31); the vocabulary is the caller's check).
std::vector<int32_t> parse_detokenize_request(const nlohmann::json& body);

}  // namespace gannet::infer
