// The server's request bodies (infer/request_parser.h), parsed without a server: what each field
// becomes, and the one-line errors for bodies that are not accepted.
#include "gannet/infer/request_parser.h"

#include <gtest/gtest.h>

#include "gannet/core/error.h"
#include "test_files.h"

namespace {

using namespace gannet;
using gannet::testing::has;
using gannet::testing::message_of;

// Bytes as ids; 0 is the end of text.
class ByteTokenizer : public data::TextTokenizer {
 public:
  using data::TextTokenizer::encode;
  std::vector<int32_t> encode(const std::string& text, data::AllowSpecial) const override {
    return std::vector<int32_t>(text.begin(), text.end());
  }
  std::string decode(const std::vector<int32_t>& ids) const override { return std::string(ids.begin(), ids.end()); }
  int vocab_size() const override { return 256; }
  int eos_id() const override { return 0; }
};

infer::CompletionRequest completion(const std::string& body) {
  return infer::parse_completion(infer::parse_request_body(body), ByteTokenizer(), 99);
}

TEST(RequestParser, CompletionFieldsBecomeTheGenerationRequest) {
  const infer::CompletionRequest c = completion(
      R"({"prompt": "ab", "max_tokens": 5, "temperature": 0.5, "top_k": 3, "seed": 7, "stop": ["x", "y"],
          "stream": true, "stream_options": {"include_usage": true}, "n": 1, "logit_bias": {}})");
  EXPECT_EQ(c.gen.prompt, (std::vector<int32_t>{'a', 'b'}));
  EXPECT_EQ(c.gen.max_tokens, 5);
  EXPECT_TRUE(c.max_tokens_given);
  EXPECT_FLOAT_EQ(c.gen.sampling.temperature, 0.5f);
  EXPECT_EQ(c.gen.sampling.top_k, 3);
  EXPECT_EQ(c.gen.sampling.seed, 7u);
  EXPECT_EQ(c.gen.stop, (std::vector<std::string>{"x", "y"}));
  EXPECT_TRUE(c.stream);
  EXPECT_TRUE(c.include_usage);
}

TEST(RequestParser, PromptsAsIdsAndTheEmptyPrompt) {
  EXPECT_EQ(completion(R"({"prompt": [[4, 5]]})").gen.prompt, (std::vector<int32_t>{4, 5}));
  const infer::CompletionRequest empty = completion(R"({"prompt": ""})");
  EXPECT_EQ(empty.gen.prompt, (std::vector<int32_t>{0}));
  EXPECT_FALSE(empty.max_tokens_given);
  EXPECT_EQ(empty.gen.sampling.seed, 99u);
}

TEST(RequestParser, BadBodiesAreOneLineErrorsNamingTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {"{not json", "invalid JSON in the request body"},
      {"[1]", "must be a JSON object, got array"},
      // A top-level scalar followed by junk: the field tracker once popped an empty key stack
      // (found by the request fuzzer, fuzz/regressions/request/).
      {R"("temperature": 0.7)", "invalid JSON in the request body"},
      {R"("a")", "must be a JSON object, got string"},
      {R"({"max_tokens": 3})", "field 'prompt' is required"},
      {R"({"prompt": "a", "bogus": 1})", "unknown field 'bogus'"},
      {R"({"prompt": [1, -2]})", "token id -2 is out of range"},
      {R"({"prompt": ["a", "b"]})", "2 prompts in one request are not supported"},
      {R"({"prompt": "a", "max_tokens": "3"})", "field 'max_tokens' must be an integer"},
      {R"({"prompt": "a", "temperature": 1e31})", "field 'temperature' is out of range"},
      {R"({"prompt": "a", "stream_options": {"include_usage": true}})", "needs \"stream\": true"},
      {R"({"prompt": "a", "echo": true})", "field 'echo' is not supported"},
  };
  for (const auto& c : cases) {
    const std::string msg = message_of([&] { completion(c.first); });
    EXPECT_TRUE(has(msg, c.second)) << c.first << ": " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(RequestParser, TokenizeAndDetokenizeBodies) {
  EXPECT_EQ(infer::parse_tokenize_request(infer::parse_request_body(R"({"content": "hi"})")), "hi");
  EXPECT_EQ(infer::parse_detokenize_request(infer::parse_request_body(R"({"tokens": [1, 2]})")),
            (std::vector<int32_t>{1, 2}));
  EXPECT_TRUE(has(message_of([] { infer::parse_tokenize_request(infer::parse_request_body("{}")); }),
                  "field 'content' is required"));
  EXPECT_TRUE(has(message_of([] { infer::parse_detokenize_request(infer::parse_request_body(R"({"tokens": 3})")); }),
                  "field 'tokens' must be an array of token ids, got number"));
}

}  // namespace
