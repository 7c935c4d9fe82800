// Defects the fuzzers (fuzz/) found, one test per class; their inputs are also replayed by
// scripts/fuzz.sh from fuzz/regressions/.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>

#include "gannet/compress/quant_config.h"
#include "gannet/data/difficulty.h"
#include "gannet/core/limits.h"
#include "gannet/data/token_file.h"
#include "gannet/infer/request_parser.h"
#include "gannet/io/json_config.h"
#include "gannet/train/train_config.h"
#include "test_files.h"

namespace {

using namespace gannet;
using gannet::testing::has;
using gannet::testing::message_of;

class FuzzFindings : public gannet::testing::TempDirTest {};

// A number too large for a double is nlohmann's out_of_range, not a parse_error: it escaped every
// JSON reader as a foreign exception (std::terminate in the harness, "500" in the server).
TEST_F(FuzzFindings, JsonNumberOverflowIsAnErrorNamingTheInput) {
  const std::string msg = message_of([] { io::parse_json_text(R"({"a": 1e999})", "x.json"); });
  EXPECT_TRUE(has(msg, "x.json: number overflow parsing '1e999'")) << msg;
  EXPECT_TRUE(has(message_of([] { train::parse_train_config(R"({"train_steps": 1e999})", "t.json"); }), "t.json"));
  EXPECT_TRUE(has(message_of([] { compress::scheme_from_config(R"({"x": -1e999})", "q.json"); }), "q.json"));
  EXPECT_TRUE(has(message_of([] { infer::parse_request_body(R"({"prompt": "a", "max_tokens": 1e999})"); }),
                  "invalid JSON in field 'max_tokens'"));
}

// A token file whose header claims a vocabulary of 2^31 - 1 (or holds one token that large) made
// data analyze's unigram counts allocate gigabytes per thread: the vocabulary is bounded when the
// file is opened, and the counts are sized by the largest token the file holds.
TEST_F(FuzzFindings, TokenFileVocabularyIsBoundedAndUnigramCountsSizedByTheFile) {
  const std::string path = file("t.tok");
  data::write_token_file(path, {0, 3, 3, 1}, 65537);  // 4-byte tokens
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::vector<double> nlp = data::unigram_neg_log_p(data::TokenFile::open(path));
  ASSERT_EQ(nlp.size(), 4u);
  EXPECT_DOUBLE_EQ(nlp[3], -std::log(0.5));
  EXPECT_DOUBLE_EQ(nlp[0], -std::log(0.25));
  EXPECT_EQ(nlp[2], std::numeric_limits<double>::infinity());

  for (uint32_t vocab : {(uint32_t)INT32_MAX, (uint32_t)kMaxVocabSize + 1}) {
    std::string big = bytes;
    std::memcpy(&big[24], &vocab, 4);  // the header's vocab_size
    gannet::testing::write(path, big);
    const std::string msg = message_of([&] { data::TokenFile::open(path); });
    EXPECT_TRUE(has(msg, gannet::str("vocab size ", vocab, " is outside [1, ", kMaxVocabSize, "]"))) << msg;
  }
  EXPECT_TRUE(has(message_of([&] { data::write_token_file(path, {0}, kMaxVocabSize + 1); }),
                  gannet::str("is outside [1, ", kMaxVocabSize, "]")));
}

}  // namespace
