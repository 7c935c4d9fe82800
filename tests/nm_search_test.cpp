// NxMiFormer's search: the knapsack against brute force over every combination, and the
// sensitivity table on a small encoder (a choice that keeps more of a weight hurts less; the pick
// fits the budget), and the forms' JSON round trip.
#include <gtest/gtest.h>

#include <cmath>

#include "gannet/compress/nm_search.h"
#include "gannet/core/rng.h"
#include "test_files.h"

using namespace gannet;
using gannet::testing::has;
using gannet::testing::message_of;

namespace {

TEST(NmSearch, KnapsackMatchesBruteForce) {
  Rng rng(5);
  for (int trial = 0; trial < 50; ++trial) {
    const int items = 1 + (int)rng.below(5), choices = 1 + (int)rng.below(4);
    std::vector<std::vector<double>> value((size_t)items);
    std::vector<std::vector<int64_t>> cost((size_t)items);
    int64_t smallest = 0;
    for (int i = 0; i < items; ++i) {
      int64_t least = INT64_MAX;
      for (int c = 0; c < choices; ++c) {
        value[(size_t)i].push_back(rng.uniform());
        cost[(size_t)i].push_back(1 + (int64_t)rng.below(1000));
        least = std::min(least, cost[(size_t)i].back());
      }
      smallest += least;
    }
    const int64_t budget = smallest + (int64_t)rng.below(2000);
    double best = INFINITY;
    std::vector<int> pick((size_t)items, 0);
    for (;;) {  // every combination
      int64_t c = 0;
      double v = 0;
      for (int i = 0; i < items; ++i) c += cost[(size_t)i][(size_t)pick[(size_t)i]], v += value[(size_t)i][(size_t)pick[(size_t)i]];
      if (c <= budget) best = std::min(best, v);
      int i = 0;
      while (i < items && ++pick[(size_t)i] == choices) pick[(size_t)i++] = 0;
      if (i == items) break;
    }
    // Costs below 4096 units of 1 byte are exact, so the optimum is brute force's.
    const std::vector<int> got = compress::pick_within_budget(value, cost, budget);
    int64_t c = 0;
    double v = 0;
    for (int i = 0; i < items; ++i) c += cost[(size_t)i][(size_t)got[(size_t)i]], v += value[(size_t)i][(size_t)got[(size_t)i]];
    EXPECT_LE(c, budget);
    EXPECT_NEAR(v, best, 1e-12) << "trial " << trial;
  }
  EXPECT_TRUE(has(message_of([] { compress::pick_within_budget({{1.0}}, {{10}}, 5); }), "fits the budget"));
}

TEST(NmSearch, SensitivityFallsWithWhatAChoiceKeepsAndThePickFits) {
  models::EncoderConfig ec;
  ec.vocab_size = 40, ec.n_ctx = 16, ec.n_layer = 2, ec.n_head = 2, ec.n_embd = 64, ec.num_classes = 3;
  models::Encoder model(ec);
  model.init(11);
  Rng rng(3);
  Tensor tokens = Tensor::empty({8, 12}, DType::i32), mask = Tensor::empty({8, 12}, DType::u8);
  for (int i = 0; i < 96; ++i) tokens.data<int32_t>()[i] = 3 + (int)rng.below(36), mask.data<uint8_t>()[i] = 1;
  std::vector<compress::NmProductForm> choices;
  for (const char* c : {"dense int8", "2:4 int8", "1:4 int8", "1:4 int4"})
    choices.push_back(compress::parse_nm_choice(c, 64, "test"));
  int64_t f32 = 0;
  for (const nn::Parameter& p : model.parameters())
    if (p.name.find(".attn.c_") != std::string::npos || p.name.find(".mlp.c_") != std::string::npos)
      if (p.name.ends_with(".weight")) f32 += 4 * p.var.value().numel();
  const compress::NmSearchTable t = compress::search_nm_forms(model, tokens, mask, choices, f32 / 8);
  ASSERT_EQ(t.sensitivity.size(), 8u);
  EXPECT_EQ(t.f32_bytes, f32);
  EXPECT_LE(t.picked_bytes(), f32 / 8);
  for (size_t i = 0; i < 8; ++i) {
    EXPECT_LT(t.sensitivity[i][0], t.sensitivity[i][2]) << "product " << i << ": dense int8 vs 1:4 int8";
    EXPECT_LT(t.bytes[i][2], t.bytes[i][1]);
    EXPECT_LT(t.bytes[i][3], t.bytes[i][2]);
  }
  EXPECT_TRUE(has(t.describe(), "picked: "));
  const auto forms = t.forms();
  const auto back = compress::nm_forms_from_json(compress::nm_forms_to_json(forms), 2, 64, "json");
  for (int l = 0; l < 2; ++l)
    for (int p = 0; p < 4; ++p) EXPECT_EQ(back[(size_t)l][(size_t)p].describe(), forms[(size_t)l][(size_t)p].describe());
  EXPECT_TRUE(has(message_of([] { compress::parse_nm_choice("2:4 int2", 64, "c"); }), "int8 or int4"));
  EXPECT_TRUE(has(message_of([] { compress::nm_forms_from_json(nlohmann::json::object(), 2, 64, "f"); }),
                  "0 products, the model has 8"));
}

}  // namespace
