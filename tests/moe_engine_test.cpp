// The inference engine on GPT-MoE models against the training model's forward pass: top-1,
// top-2 and PR-MoE (use_residual), dropless; prompts, token-by-token decode, batched decode
// against single decode; what it refuses (expert choice, quantization of MoE models); its counts.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "engine_test_util.h"
#include "gannet/autograd/tape.h"
#include "gannet/compress/quant_scheme.h"
#include "gannet/infer/engine.h"
#include "gannet/models/gpt.h"

using namespace gannet;
using namespace gannet::testing;

namespace {
constexpr int64_t kVocab = 64;

struct Variant {
  const char* name;
  int64_t k;
  bool residual;
};

void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

models::GptConfig moe_config(const Variant& v, int64_t n_ctx = 40) {
  models::GptConfig c = small_config(kVocab, n_ctx, 2, 32);
  c.moe.num_experts = {4};  // expert_interval 2: block 1 is MoE, block 0 dense
  c.moe.k = v.k;
  c.moe.drop_tokens = false;
  c.moe.use_residual = v.residual;
  return c;
}

// Experts of the MoE block that the training model's routing of `ids` uses.
std::set<int32_t> experts_used(const models::Gpt& m, const std::vector<int32_t>& ids) {
  autograd::NoGrad ng;
  nn::MoePass pass;
  pass.keep_routing = true;
  m.logits(token_tensor(ids), &pass);
  std::set<int32_t> used;
  for (const auto& r : pass.routings)
    for (int64_t s = 0; s < r->slots(); ++s) used.insert(r->slot_expert(s));
  return used;
}

models::Gpt random_model(const models::GptConfig& c, uint64_t seed) {
  // Non-trivial LayerNorm parameters and biases; MoE weights large enough that the router is
  // decisive and each expert's output matters to the logits; embeddings large enough beside the
  // biases that tokens differ, and so their routing.
  return perturbed_model(c, seed, [](const std::string& name) {
    const bool moe = name.find(".moe.") != std::string::npos, embedding = name.find("wte") != std::string::npos;
    if (!moe && !embedding && name.find("ln_") == std::string::npos && name.find("bias") == std::string::npos)
      return 0.f;
    return embedding ? 0.5f : 0.2f;
  });
}

class MoeEngine : public ::testing::TestWithParam<Variant> {};

TEST_P(MoeEngine, AllLogitsEqualTheTrainingForward) {
  models::Gpt m = random_model(moe_config(GetParam()), 1);
  infer::Engine e(weights_of(m), {});
  // 33 and 40: an expert may get more rows than the decode kernel takes.
  for (int64_t n : {1, 2, 7, 33, 40}) expect_forward_all_near_reference(e, m, n, kVocab, 1e-4f);
  EXPECT_GE(experts_used(m, random_ids(40, kVocab, 40)).size(), 3u) << "the routing should spread over the experts";
}

TEST_P(MoeEngine, PrefillThenDecodeEqualsTheFullForward) {
  models::Gpt m = random_model(moe_config(GetParam()), 2);
  infer::Engine e(weights_of(m), {});
  const int64_t n = 30;
  auto ids = random_ids(n, kVocab, 9);
  auto want = reference_logits(m, ids);
  for (int64_t prefix : {1, 5}) expect_prefill_then_decode_near(e, ids, want, prefix, kVocab, 1e-4f);
}

TEST_P(MoeEngine, BatchedDecodeEqualsSingleDecodeBitwise) {
  models::Gpt m = random_model(moe_config(GetParam()), 5);
  const int64_t S = 4;
  expect_batched_decode_equals_single_decode_bitwise(
      weights_of(m), S, 8, kVocab,
      [&](int64_t step) {  // two sequences together on even steps, all four on odd ones, in varying order
        std::vector<int64_t> seqs;
        for (int64_t s = 0; s < S; ++s) {
          const int64_t seq = (s + step) % S;
          if (step % 2 == 0 && seq >= 2) continue;
          seqs.push_back(seq);
        }
        return seqs;
      },
      [&](int64_t step) {  // the sequences that sat out catch up, alone in both engines
        std::vector<int64_t> seqs;
        if (step % 2 == 0)
          for (int64_t seq = 2; seq < S; ++seq) seqs.push_back(seq);
        return seqs;
      });
}

TEST_P(MoeEngine, LongPromptRunsInPiecesAndMatches) {
  models::Gpt m = random_model(moe_config(GetParam(), 600), 3);
  infer::Engine e(weights_of(m), {});
  auto ids = random_ids(560, kVocab, 4);  // longer than one 512-row pass
  auto want = reference_logits(m, ids);
  std::vector<float> got(ids.size() * kVocab);
  e.forward_all({0, ids}, got.data());
  expect_near(got.data(), want.data(), (int64_t)got.size(), 2e-4f, "long prompt");
}

TEST_P(MoeEngine, Bf16WeightsStayCloseToF32) {
  models::Gpt m = random_model(moe_config(GetParam()), 6);
  infer::EngineOptions o;
  o.weights = infer::WeightFormat::bf16;
  infer::Engine e(weights_of(m), o);
  auto ids = random_ids(20, kVocab, 7);
  auto want = reference_logits(m, ids);
  std::vector<float> got(20 * kVocab);
  e.forward_all({0, ids}, got.data());
  EXPECT_LT(rms_rel_error(got, want), 3e-2);
}

INSTANTIATE_TEST_SUITE_P(Variants, MoeEngine,
                         ::testing::Values(Variant{"top1", 1, false}, Variant{"top2", 2, false},
                                           Variant{"top2_residual", 2, true}, Variant{"top1_residual", 1, true}),
                         [](const ::testing::TestParamInfo<Variant>& i) { return std::string(i.param.name); });

TEST(MoeEngineRules, RefusesExpertChoiceRouting) {
  models::GptConfig c = moe_config({"ec", 1, false});
  c.moe.router = "expert_choice";
  c.moe.drop_tokens = true;
  models::Gpt m = random_model(c, 8);
  try {
    infer::Engine e(weights_of(m), {});
    FAIL() << "an expert-choice model was accepted";
  } catch (const Error& err) {
    const std::string what = err.what();
    EXPECT_NE(what.find("expert_choice"), std::string::npos) << what;
    EXPECT_NE(what.find("not causal"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

TEST(MoeEngineRules, QuantizationOfMoeModelsIsPlainRoundingOnly) {
  models::Gpt m = random_model(moe_config({"q", 1, false}), 9);
  const io::GptWeights w = weights_of(m);
  EXPECT_NO_THROW(compress::check_quantizable(w.config));
  EXPECT_THROW(compress::check_quantizable(w.config, /*lkd=*/true), Error);
  EXPECT_NO_THROW(compress::quantize_model(w, compress::scheme_preset("w8a16", {})));
  EXPECT_NO_THROW(compress::check_quantizable(models::GptConfig{}, /*lkd=*/true));
}

TEST(MoeEngineRules, CountsTheRouterAndKExperts) {
  const int64_t C = 32, H = 4 * C;
  models::GptConfig c1 = moe_config({"k1", 1, false}), c2 = moe_config({"k2", 2, false});
  models::Gpt m1 = random_model(c1, 10), m2 = random_model(c2, 10);
  infer::Engine e1(weights_of(m1), {}), e2(weights_of(m2), {});
  // One more expert per token: its two f32 matrices (no padding at C = 32) and biases.
  EXPECT_EQ(e2.weight_bytes_per_step() - e1.weight_bytes_per_step(), (2 * H * C + H + C) * 4);
  // FLOPs: one dense block and one MoE block (router 4 x C, k experts).
  const double pos = 9, V = kVocab;
  const double dense = 2.0 * 12.0 * C * C, attn = 4.0 * (pos + 1) * C;
  const double moe1 = 2.0 * (4.0 * C * C + 4.0 * C + 8.0 * C * C);
  EXPECT_DOUBLE_EQ(e1.flops_per_token((int64_t)pos, false), dense + moe1 + 2 * attn);
  EXPECT_DOUBLE_EQ(e2.flops_per_token((int64_t)pos, true) - e1.flops_per_token((int64_t)pos, true),
                   2.0 * 8.0 * C * C);
  EXPECT_DOUBLE_EQ(e1.flops_per_token((int64_t)pos, true) - e1.flops_per_token((int64_t)pos, false), 2.0 * C * V);
}
}  // namespace
