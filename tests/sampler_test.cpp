// The sampler against exact expectations: greedy and its limits (top_k 1, tiny top_p) are the
// argmax; sampled frequencies match the (filtered, renormalized) softmax within 5 standard errors.
#include "gannet/infer/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "gannet/core/error.h"
#include "gannet/core/rng.h"

namespace gannet::infer {
namespace {

std::vector<float> random_logits(int64_t n, uint64_t seed, float scale = 3.0f) {
  Rng rng(seed);
  std::vector<float> v((size_t)n);
  for (float& x : v) x = rng.normal() * scale;
  return v;
}

int32_t argmax(const std::vector<float>& v) {
  int32_t best = 0;
  for (size_t i = 1; i < v.size(); ++i)
    if (v[i] > v[best]) best = (int32_t)i;
  return best;
}

std::vector<double> softmax(const std::vector<float>& l, double t) {
  double m = l[argmax(l)], z = 0;
  std::vector<double> p(l.size());
  for (size_t i = 0; i < l.size(); ++i) z += p[i] = std::exp((l[i] - m) / t);
  for (double& x : p) x /= z;
  return p;
}

// Draws n samples and checks each token's frequency against `expected` within 5 standard errors
// (and exactly zero where the expectation is zero).
void expect_frequencies(Sampler& s, const std::vector<float>& logits, const std::vector<double>& expected, int n) {
  std::vector<int> count(logits.size(), 0);
  for (int i = 0; i < n; ++i) count[s.sample(logits)]++;
  for (size_t i = 0; i < logits.size(); ++i) {
    double p = expected[i];
    if (p == 0.0) {
      EXPECT_EQ(count[i], 0) << "token " << i;
      continue;
    }
    double f = (double)count[i] / n, se = std::sqrt(p * (1 - p) / n);
    EXPECT_NEAR(f, p, 5 * se + 1e-12) << "token " << i;
  }
}

TEST(Sampler, ValidatesParams) {
  auto bad = [](auto edit) {
    SamplingParams p;
    edit(p);
    EXPECT_THROW(Sampler(p, 10), Error);
  };
  bad([](SamplingParams& p) { p.temperature = -0.1f; });
  bad([](SamplingParams& p) { p.temperature = NAN; });
  bad([](SamplingParams& p) { p.temperature = INFINITY; });
  bad([](SamplingParams& p) { p.top_k = -1; });
  bad([](SamplingParams& p) { p.top_p = 0.0f; });
  bad([](SamplingParams& p) { p.top_p = 1.01f; });
  bad([](SamplingParams& p) { p.top_p = NAN; });
  bad([](SamplingParams& p) { p.repetition_penalty = 0.0f; });
  bad([](SamplingParams& p) { p.repetition_penalty = -1.0f; });
  try {
    SamplingParams p;
    p.top_p = 2.0f;
    p.validate();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("top_p"), std::string::npos) << e.what();
  }
  SamplingParams ok;
  Sampler s(ok, 4);
  std::vector<float> three(3, 0.0f);
  EXPECT_THROW(s.sample(three), Error);
  std::vector<int32_t> prompt = {7};
  ok.repetition_penalty = 1.2f;
  EXPECT_THROW(Sampler(ok, 4, prompt), Error);
}

TEST(Sampler, GreedyIsArgmaxWithTiesToLowestId) {
  SamplingParams p;
  p.temperature = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    auto l = random_logits(50257, seed);
    Sampler s(p, (int64_t)l.size());
    EXPECT_EQ(s.sample(l), argmax(l));
  }
  std::vector<float> tie = {0.0f, 3.0f, 1.0f, 3.0f};
  Sampler s(p, 4);
  EXPECT_EQ(s.sample(tie), 1);
}

TEST(Sampler, TopKOneAndTinyTopPAreArgmax) {
  for (uint64_t seed = 0; seed < 10; ++seed) {
    auto l = random_logits(50257, seed + 100, 1.0f);
    SamplingParams k1;
    k1.top_k = 1;
    k1.seed = seed;
    SamplingParams tiny;
    tiny.top_p = 1e-6f;
    tiny.seed = seed;
    Sampler a(k1, (int64_t)l.size()), b(tiny, (int64_t)l.size());
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(a.sample(l), argmax(l));
      EXPECT_EQ(b.sample(l), argmax(l));
    }
  }
}

TEST(Sampler, TemperatureFrequenciesMatchSoftmax) {
  auto l = random_logits(8, 7, 1.0f);
  for (float t : {1.0f, 0.5f, 2.0f}) {
    SamplingParams p;
    p.temperature = t;
    p.seed = 42;
    Sampler s(p, 8);
    expect_frequencies(s, l, softmax(l, t), 100000);
  }
}

TEST(Sampler, TopKRenormalizesOverTheKLikeliest) {
  std::vector<float> l = {0.1f, 2.0f, -1.0f, 1.5f, 0.7f, 1.9f};
  SamplingParams p;
  p.top_k = 3;
  p.temperature = 0.8f;
  p.seed = 3;
  Sampler s(p, 6);
  // Tokens 1, 5, 3 are the three likeliest.
  std::vector<float> kept = {l[1], l[5], l[3]};
  auto q = softmax(kept, 0.8);
  std::vector<double> expected = {0, q[0], 0, q[2], 0, q[1]};
  expect_frequencies(s, l, expected, 100000);
}

TEST(Sampler, TopPKeepsTheSmallestNucleus) {
  // Probabilities 0.5, 0.3, 0.15, 0.05: top_p 0.75 keeps the first two, renormalized.
  std::vector<float> l = {std::log(0.15f), std::log(0.5f), std::log(0.05f), std::log(0.3f)};
  SamplingParams p;
  p.top_p = 0.75f;
  p.seed = 5;
  Sampler s(p, 4);
  expect_frequencies(s, l, {0, 0.625, 0, 0.375}, 100000);

  // top_k first, then top_p over the renormalized top-k: 0.5/0.8 >= 0.6 keeps only token 1.
  p.top_k = 2;
  p.top_p = 0.6f;
  Sampler s2(p, 4);
  expect_frequencies(s2, l, {0, 1, 0, 0}, 1000);
}

TEST(Sampler, TopPOverALargeVocabularyNeedsManyTokens) {
  // 400 equally likely tokens (ties broken by id) among 50257: top_p 0.5 keeps the first 200.
  std::vector<float> l(50257, -1e30f);
  for (int i = 0; i < 400; ++i) l[i * 100] = 1.0f;
  SamplingParams p;
  p.top_p = 0.5f;
  p.seed = 9;
  Sampler s(p, (int64_t)l.size());
  std::vector<int> count(200, 0);
  const int n = 1600;
  for (int i = 0; i < n; ++i) {
    int32_t id = s.sample(l);
    ASSERT_EQ(id % 100, 0);
    ASSERT_LT(id / 100, 200) << "outside the nucleus";
    count[id / 100]++;
  }
  // Expected 8 draws each: practically every nucleus token appears.
  EXPECT_GT(std::count_if(count.begin(), count.end(), [](int c) { return c > 0; }), 195);
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  std::vector<float> l = {2.0f, 1.9f, -1.0f, -1.1f};
  SamplingParams p;
  p.temperature = 0;
  p.repetition_penalty = 1.5f;
  // Prompt holds token 0: 2 / 1.5 = 1.33 < 1.9, so greedy picks 1; then both are seen:
  // 1.33 > 1.27, so 0 again.
  std::vector<int32_t> prompt = {0};
  Sampler s(p, 4, prompt);
  EXPECT_EQ(s.sample(l), 1);
  EXPECT_EQ(s.sample(l), 0);
  EXPECT_EQ(l[0], 2.0f);  // the caller's logits are untouched

  // Negative logits are multiplied: -1 * 1.5 = -1.5 < -1.1.
  std::vector<float> neg = {-1.0f, -1.1f};
  std::vector<int32_t> seen = {0};
  Sampler s2(p, 2, seen);
  EXPECT_EQ(s2.sample(neg), 1);
  Sampler s3(p, 2);
  EXPECT_EQ(s3.sample(neg), 0);

  // Sampled: the penalized distribution is softmax of the penalized logits.
  p.temperature = 1.0f;
  p.repetition_penalty = 2.0f;
  std::vector<float> m = {1.0f, 0.5f, -0.5f};
  std::vector<float> penalized = {0.5f, 0.5f, -1.0f};
  std::vector<int32_t> both = {0, 2};
  // Output tokens join the seen set; sample fresh samplers so the set stays {0, 2} plus output.
  std::vector<int> count(3, 0);
  const int n = 60000;
  for (int i = 0; i < n; ++i) {
    p.seed = (uint64_t)i;
    Sampler one(p, 3, both);
    count[one.sample(m)]++;
  }
  auto q = softmax(penalized, 1.0);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR((double)count[i] / n, q[i], 5 * std::sqrt(q[i] * (1 - q[i]) / n));
}

TEST(Sampler, SameSeedSameTokens) {
  auto l = random_logits(50257, 11, 1.0f);
  SamplingParams p;
  p.temperature = 0.9f;
  p.top_k = 40;
  p.top_p = 0.95f;
  p.repetition_penalty = 1.1f;
  p.seed = 1234;
  auto run = [&](uint64_t seed) {
    p.seed = seed;
    Sampler s(p, (int64_t)l.size());
    std::vector<int32_t> out;
    for (int i = 0; i < 50; ++i) out.push_back(s.sample(l));
    return out;
  };
  EXPECT_EQ(run(1234), run(1234));
  EXPECT_NE(run(1234), run(1235));
}

}  // namespace
}  // namespace gannet::infer
