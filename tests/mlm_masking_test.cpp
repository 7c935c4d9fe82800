// BERT masking of token windows: the exact number chosen per sequence, exact targets, padding and
// special ids never chosen, determinism from the Rng, and the 80/10/10 split and uniform choice
// within computed binomial bounds.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "gannet/data/mlm_masking.h"

using namespace gannet;
using data::MlmMaskingOptions;

namespace {
// Ordinary ids only (>= num_special), uniform.
Tensor ordinary_tokens(int64_t B, int64_t T, const MlmMaskingOptions& o, uint64_t seed) {
  Rng rng(seed);
  Tensor t = Tensor::empty({B, T}, DType::i32);
  for (int64_t i = 0; i < B * T; ++i)
    t.data<int32_t>()[i] = (int32_t)(o.num_special + (int64_t)rng.below((uint64_t)(o.vocab_size - o.num_special)));
  return t;
}

// |count - n p| within 5 standard deviations of Binomial(n, p) (two-sided chance of failing by
// luck below 6e-7 per check; the seeds are fixed anyway).
void expect_binomial(int64_t count, int64_t n, double p, const char* what) {
  const double mean = (double)n * p, sd = std::sqrt((double)n * p * (1 - p));
  EXPECT_LE(std::fabs((double)count - mean), 5 * sd) << what << ": " << count << " of " << n << ", expected p=" << p;
}
}  // namespace

TEST(MlmMasking, ChosenCountIsRoundedFifteenPercentAtLeastOne) {
  EXPECT_EQ(data::mlm_chosen_count(0, 0.15f), 0);
  EXPECT_EQ(data::mlm_chosen_count(1, 0.15f), 1);
  EXPECT_EQ(data::mlm_chosen_count(3, 0.15f), 1);    // 0.45 rounds to 0, raised to 1
  EXPECT_EQ(data::mlm_chosen_count(10, 0.15f), 2);   // 1.5 rounds half up
  EXPECT_EQ(data::mlm_chosen_count(128, 0.15f), 19); // 19.2
  EXPECT_EQ(data::mlm_chosen_count(127, 0.15f), 19); // 19.05
  EXPECT_EQ(data::mlm_chosen_count(100, 1.f), 100);
}

TEST(MlmMasking, TargetsHoldTheOriginalsExactlyAtTheChosenPositions) {
  MlmMaskingOptions o;
  o.vocab_size = 50;
  Tensor tokens = ordinary_tokens(4, 40, o, 1);
  Rng rng(7);
  data::MlmBatch b = data::mask_tokens(tokens, Tensor(), o, rng);
  ASSERT_EQ(b.inputs.shape(), tokens.shape());
  ASSERT_EQ(b.targets.shape(), tokens.shape());
  int64_t total = 0;
  for (int64_t s = 0; s < 4; ++s) {
    int64_t chosen = 0;
    for (int64_t t = 0; t < 40; ++t) {
      const int64_t i = s * 40 + t;
      const int32_t orig = tokens.data<int32_t>()[i];
      const int32_t in = b.inputs.data<int32_t>()[i], tg = b.targets.data<int32_t>()[i];
      if (tg == -1) {
        EXPECT_EQ(in, orig) << i;  // not chosen: untouched
      } else {
        EXPECT_EQ(tg, orig) << i;
        EXPECT_TRUE(in == o.mask_id || (in >= o.num_special && in < o.vocab_size)) << in;
        ++chosen;
      }
    }
    EXPECT_EQ(chosen, 6) << "sequence " << s;  // round(0.15 * 40)
    total += chosen;
  }
  EXPECT_EQ(b.chosen, total);
}

TEST(MlmMasking, NeverChoosesPaddingOrSpecialIds) {
  MlmMaskingOptions o;
  o.vocab_size = 30;
  const int64_t B = 3, T = 12;
  Tensor tokens = ordinary_tokens(B, T, o, 2);
  Tensor valid = Tensor::empty({B, T}, DType::u8);
  for (int64_t i = 0; i < B * T; ++i) valid.data<uint8_t>()[i] = (i % T) < 5;  // 5 real tokens, then padding
  tokens.data<int32_t>()[1] = 2;                                                  // an eos among them
  for (int64_t t = 0; t < T; ++t) tokens.data<int32_t>()[2 * T + t] = t % 3;      // a row of specials only
  for (int draw = 0; draw < 200; ++draw) {
    Rng rng(draw);
    data::MlmBatch b = data::mask_tokens(tokens, valid, o, rng);
    for (int64_t i = 0; i < B * T; ++i) {
      const bool eligible = valid.data<uint8_t>()[i] && tokens.data<int32_t>()[i] >= o.num_special;
      if (!eligible) {
        ASSERT_EQ(b.targets.data<int32_t>()[i], -1) << i;
        ASSERT_EQ(b.inputs.data<int32_t>()[i], tokens.data<int32_t>()[i]) << i;
      }
    }
    ASSERT_EQ(b.chosen, 2) << "one of 4 eligible in row 0, one of 5 in row 1, none in row 2";
  }
}

TEST(MlmMasking, SameRngStateGivesTheSameBatch) {
  MlmMaskingOptions o;
  o.vocab_size = 100;
  Tensor tokens = ordinary_tokens(8, 64, o, 3);
  Rng a(11), b(11);
  for (int step = 0; step < 3; ++step) {
    data::MlmBatch x = data::mask_tokens(tokens, Tensor(), o, a);
    data::MlmBatch y = data::mask_tokens(tokens, Tensor(), o, b);
    for (int64_t i = 0; i < tokens.numel(); ++i) {
      ASSERT_EQ(x.inputs.data<int32_t>()[i], y.inputs.data<int32_t>()[i]);
      ASSERT_EQ(x.targets.data<int32_t>()[i], y.targets.data<int32_t>()[i]);
    }
  }
  EXPECT_EQ(a.state(), b.state());
  // A restored state resumes the sequence of batches exactly; another seed gives another batch.
  Rng resumed(0);
  resumed.set_state(a.state());
  data::MlmBatch next = data::mask_tokens(tokens, Tensor(), o, a);
  data::MlmBatch again = data::mask_tokens(tokens, Tensor(), o, resumed);
  Rng other(12);
  data::MlmBatch different = data::mask_tokens(tokens, Tensor(), o, other);
  int64_t differ = 0;
  for (int64_t i = 0; i < tokens.numel(); ++i) {
    ASSERT_EQ(next.inputs.data<int32_t>()[i], again.inputs.data<int32_t>()[i]);
    ASSERT_EQ(next.targets.data<int32_t>()[i], again.targets.data<int32_t>()[i]);
    differ += next.targets.data<int32_t>()[i] != different.targets.data<int32_t>()[i];
  }
  EXPECT_GT(differ, 0);
}

TEST(MlmMasking, SplitsEightyTenTenWithinBinomialBounds) {
  MlmMaskingOptions o;
  o.vocab_size = 13;  // 10 ordinary ids: the random replacement's distribution is checked per id
  const int64_t B = 64, T = 100, ordinary = o.vocab_size - o.num_special;
  Rng rng(5);
  int64_t chosen = 0, masked = 0, unchanged = 0, replaced = 0;
  std::vector<int64_t> replacement_count((size_t)o.vocab_size, 0), position_count((size_t)T, 0);
  for (int draw = 0; draw < 40; ++draw) {
    Tensor tokens = ordinary_tokens(B, T, o, 100 + draw);
    data::MlmBatch b = data::mask_tokens(tokens, Tensor(), o, rng);
    for (int64_t i = 0; i < B * T; ++i) {
      const int32_t tg = b.targets.data<int32_t>()[i], in = b.inputs.data<int32_t>()[i];
      if (tg < 0) continue;
      ++chosen;
      ++position_count[(size_t)(i % T)];
      if (in == o.mask_id) ++masked;
      else if (in == tg) ++unchanged;
      else {
        ++replaced;
        ++replacement_count[(size_t)in];
      }
    }
  }
  ASSERT_EQ(chosen, 40 * B * 15);
  // A random replacement draws the original again with probability 1/ordinary.
  expect_binomial(masked, chosen, 0.8, "[MASK]");
  expect_binomial(unchanged, chosen, 0.1 + 0.1 / (double)ordinary, "unchanged");
  expect_binomial(replaced, chosen, 0.1 * (1 - 1 / (double)ordinary), "random id");
  // Replacement ids: never special; each ordinary id equally likely (the originals are uniform).
  for (int32_t id = 0; id < o.num_special; ++id) EXPECT_EQ(replacement_count[(size_t)id], 0) << id;
  for (int32_t id = o.num_special; id < o.vocab_size; ++id)
    expect_binomial(replacement_count[(size_t)id], replaced, 1.0 / (double)ordinary, "replacement id");
  // Every position is chosen with probability 15/100 per draw.
  for (int64_t t = 0; t < T; ++t) expect_binomial(position_count[(size_t)t], 40 * B, 0.15, "position");
}

TEST(MlmMasking, RejectsBadInputAndOptions) {
  MlmMaskingOptions o;
  o.vocab_size = 20;
  Rng rng(1);
  Tensor tokens = ordinary_tokens(2, 5, o, 1);
  tokens.data<int32_t>()[3] = 20;
  EXPECT_THROW(data::mask_tokens(tokens, Tensor(), o, rng), Error);
  tokens.data<int32_t>()[3] = -1;
  EXPECT_THROW(data::mask_tokens(tokens, Tensor(), o, rng), Error);
  tokens.data<int32_t>()[3] = 5;
  EXPECT_THROW(data::mask_tokens(tokens, Tensor::zeros({2, 4}, DType::u8), o, rng), Error);
  EXPECT_THROW(data::mask_tokens(tokens, Tensor::zeros({2, 5}, DType::f32), o, rng), Error);
  EXPECT_THROW(data::mask_tokens(Tensor::zeros({10}, DType::i32), Tensor(), o, rng), Error);
  auto rejects = [&](auto edit) {
    MlmMaskingOptions bad = o;
    edit(bad);
    EXPECT_THROW(bad.validate(), Error);
    EXPECT_THROW(data::mask_tokens(tokens, Tensor(), bad, rng), Error);
  };
  rejects([](MlmMaskingOptions& b) { b.mask_prob = 0.f; });
  rejects([](MlmMaskingOptions& b) { b.mask_prob = 1.5f; });
  rejects([](MlmMaskingOptions& b) { b.mask_prob = std::nanf(""); });
  rejects([](MlmMaskingOptions& b) { b.mask_id = 3; });  // not a special id: it could be a target
  rejects([](MlmMaskingOptions& b) { b.num_special = 0; });
  rejects([](MlmMaskingOptions& b) { b.vocab_size = 3; });
  EXPECT_NO_THROW(data::mask_tokens(tokens, Tensor(), o, rng));
}
