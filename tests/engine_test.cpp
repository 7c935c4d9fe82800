// The inference engine against the training model's forward pass: logits for prompts of several
// lengths, with and without the cache, batched decode against single decode, bf16 weights.
#include "gannet/infer/engine.h"

#include <gtest/gtest.h>

#include "engine_test_util.h"
#include "gannet/models/gpt.h"

using namespace gannet;
using namespace gannet::testing;

namespace {
models::GptConfig tiny(int64_t n_ctx = 40) { return small_config(67, n_ctx, 3, 24); }

models::Gpt random_model(const models::GptConfig& c, uint64_t seed) {
  // Non-trivial LayerNorm parameters and biases, so that folding them into the products is tested.
  return perturbed_model(c, seed, [](const std::string& name) {
    return name.find("ln_") != std::string::npos || name.find("bias") != std::string::npos ? 0.2f : 0.f;
  });
}
}  // namespace

TEST(Engine, AllLogitsEqualTheTrainingForward) {
  models::Gpt m = random_model(tiny(), 1);
  infer::Engine e(weights_of(m), {});
  const int64_t V = 67;
  for (int64_t n : {1, 2, 7, 33, 40}) {
    expect_forward_all_near_reference(e, m, n, V, 1e-4f);
    EXPECT_EQ(e.length(0), n);
  }
}

TEST(Engine, PrefillThenDecodeEqualsTheFullForward) {
  models::Gpt m = random_model(tiny(), 2);
  infer::Engine e(weights_of(m), {});
  const int64_t V = 67, n = 30;
  auto ids = random_ids(n, V, 9);
  auto want = reference_logits(m, ids);
  for (int64_t prefix : {1, 5, 29}) expect_prefill_then_decode_near(e, ids, want, prefix, V, 1e-4f);
}

TEST(Engine, LongPromptsRunInPiecesAndMatch) {
  models::Gpt m = random_model(tiny(700), 3);
  infer::Engine e(weights_of(m), {});
  auto ids = random_ids(650, 67, 4);  // longer than one 512-row pass
  auto want = reference_logits(m, ids);
  std::vector<float> got(650 * 67);
  e.forward_all({0, ids}, got.data());
  expect_near(got.data(), want.data(), 650 * 67, 2e-4f, "long prompt");
  std::vector<float> last(67);
  e.reset(0);
  infer::Chunk c{0, ids};
  e.forward(std::span<const infer::Chunk>(&c, 1), last.data());
  expect_near(last.data(), want.data() + 649 * 67, 67, 2e-4f, "last row");
}

TEST(Engine, BatchedDecodeEqualsSingleDecodeBitwise) {
  models::Gpt m = random_model(tiny(), 5);
  const int64_t S = 5, V = 67;
  expect_batched_decode_equals_single_decode_bitwise(
      weights_of(m), S, 6, V,
      [&](int64_t step) {  // a different subset and order each step: sequence s sits out on step s
        std::vector<int64_t> seqs;
        for (int64_t s = S - 1; s >= 0; --s)
          if (s != step) seqs.push_back(s);
        return seqs;
      },
      [&](int64_t step) {  // the sequence that sat out catches up alone
        return step < S ? std::vector<int64_t>{step} : std::vector<int64_t>{};
      });
}

TEST(Engine, Bf16WeightsStayCloseToF32) {
  models::Gpt m = random_model(tiny(), 6);
  infer::EngineOptions o;
  o.weights = infer::WeightFormat::bf16;
  infer::Engine e(weights_of(m), o);
  auto ids = random_ids(20, 67, 7);
  auto want = reference_logits(m, ids);
  std::vector<float> got(20 * 67);
  e.forward_all({0, ids}, got.data());
  EXPECT_LT(rms_rel_error(got, want), 2e-2);  // bf16 keeps 8 bits of mantissa
  // The matrices are read at half the bytes (plus the packing's padding of n_embd 24 to 32);
  // biases and LayerNorm stay f32.
  double ratio = (double)e.weight_bytes_per_step() / infer::Engine(weights_of(m), {}).weight_bytes_per_step();
  EXPECT_GT(ratio, 0.5);
  EXPECT_LT(ratio, 0.7);
}

TEST(Engine, RejectsBadCalls) {
  models::Gpt m = random_model(tiny(10), 8);
  infer::EngineOptions o;
  o.max_sequences = 2;
  infer::Engine e(weights_of(m), o);
  std::vector<float> logits(2 * 67);
  auto ids = random_ids(11, 67, 1);
  infer::Chunk too_long{0, ids};
  EXPECT_THROW(e.forward(std::span<const infer::Chunk>(&too_long, 1), logits.data()), Error);
  EXPECT_EQ(e.length(0), 0);
  std::vector<int32_t> bad = {3, 67};
  infer::Chunk bad_id{0, bad};
  EXPECT_THROW(e.forward(std::span<const infer::Chunk>(&bad_id, 1), logits.data()), Error);
  std::vector<int32_t> one = {1};
  std::vector<infer::Chunk> twice = {{1, one}, {1, one}};
  EXPECT_THROW(e.forward(twice, logits.data()), Error);
  infer::Chunk out_of_range{2, one};
  EXPECT_THROW(e.forward(std::span<const infer::Chunk>(&out_of_range, 1), logits.data()), Error);
  o.max_context = 11;
  EXPECT_THROW(infer::Engine(weights_of(m), o), Error);
  io::GptWeights missing = weights_of(m);
  missing.tensors.erase("h.1.mlp.c_fc.bias");
  EXPECT_THROW(infer::Engine(missing, {}), Error);
  EXPECT_THROW(infer::parse_weight_format("int3"), Error);
}
