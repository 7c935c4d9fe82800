// The inference engine against the training model's forward pass: logits for prompts of several
// lengths, with and without the cache, batched decode against single decode, bf16 weights.
#include "gannet/infer/engine.h"

#include <gtest/gtest.h>

#include <cmath>

#include "gannet/autograd/tape.h"
#include "gannet/core/dtype.h"
#include "gannet/core/rng.h"
#include "gannet/models/gpt.h"

using namespace gannet;

namespace {
models::GptConfig tiny(int64_t n_ctx = 40) {
  models::GptConfig c;
  c.vocab_size = 67;
  c.n_ctx = n_ctx;
  c.n_layer = 2;
  c.n_head = 3;
  c.n_embd = 24;
  return c;
}

io::GptWeights weights_of(const models::Gpt& m) {
  io::GptWeights w;
  w.config = m.config();
  for (const auto& p : m.parameters()) w.tensors[p.name] = p.var.value();
  return w;
}

std::vector<int32_t> random_ids(int64_t n, int64_t V, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> ids(n);
  for (auto& t : ids) t = (int32_t)rng.below(V);
  return ids;
}

// Logits of the training model for one sequence: [n, V].
std::vector<float> reference_logits(const models::Gpt& m, const std::vector<int32_t>& ids) {
  autograd::NoGrad ng;
  Tensor t = Tensor::empty({1, (int64_t)ids.size()}, DType::i32);
  for (size_t i = 0; i < ids.size(); ++i) t.data<int32_t>()[i] = ids[i];
  Tensor l = m.logits(t).value();
  return std::vector<float>(l.f32(), l.f32() + l.numel());
}

void expect_near(const float* got, const float* want, int64_t n, float tol, const std::string& what) {
  for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(got[i], want[i], tol * (1.f + std::fabs(want[i]))) << what << " at " << i;
}

models::Gpt random_model(const models::GptConfig& c, uint64_t seed) {
  models::Gpt m(c);
  m.init(seed);
  // Non-trivial LayerNorm parameters and biases, so that folding them into the products is tested.
  Rng rng(seed + 100);
  for (const auto& p : m.parameters()) {
    if (p.name.find("ln_") == std::string::npos && p.name.find("bias") == std::string::npos) continue;
    float* v = p.var.value().f32();
    for (int64_t i = 0; i < p.var.value().numel(); ++i) v[i] += 0.2f * rng.normal();
  }
  return m;
}
}  // namespace

TEST(Engine, AllLogitsEqualTheTrainingForward) {
  models::Gpt m = random_model(tiny(), 1);
  infer::Engine e(weights_of(m), {});
  const int64_t V = 67;
  for (int64_t n : {1, 2, 7, 33, 40}) {
    auto ids = random_ids(n, V, n);
    auto want = reference_logits(m, ids);
    std::vector<float> got(n * V);
    e.reset(0);
    e.forward_all({0, ids}, got.data());
    expect_near(got.data(), want.data(), n * V, 1e-4f, "length " + std::to_string(n));
    EXPECT_EQ(e.length(0), n);
  }
}

TEST(Engine, PrefillThenDecodeEqualsTheFullForward) {
  models::Gpt m = random_model(tiny(), 2);
  infer::Engine e(weights_of(m), {});
  const int64_t V = 67, n = 30;
  auto ids = random_ids(n, V, 9);
  auto want = reference_logits(m, ids);
  for (int64_t prefix : {1, 5, 29}) {
    e.reset(0);
    std::vector<float> got(V);
    std::span<const int32_t> all(ids);
    infer::Chunk first{0, all.subspan(0, prefix)};
    e.forward(std::span<const infer::Chunk>(&first, 1), got.data());
    expect_near(got.data(), want.data() + (prefix - 1) * V, V, 1e-4f, "prefill");
    for (int64_t i = prefix; i < n; ++i) {
      infer::Chunk step{0, all.subspan(i, 1)};
      e.forward(std::span<const infer::Chunk>(&step, 1), got.data());
      expect_near(got.data(), want.data() + i * V, V, 1e-4f, "decode " + std::to_string(i));
    }
  }
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
  infer::EngineOptions o;
  o.max_sequences = S;
  infer::Engine batched(weights_of(m), o), single(weights_of(m), o);
  std::vector<std::vector<int32_t>> prompts, conts;
  for (int64_t s = 0; s < S; ++s) {
    prompts.push_back(random_ids(3 + 4 * s, V, 10 + s));
    conts.push_back(random_ids(6, V, 20 + s));
  }
  std::vector<float> logits(S * V), one(V);
  for (int64_t s = 0; s < S; ++s) {
    infer::Chunk c{s, prompts[s]};
    batched.forward(std::span<const infer::Chunk>(&c, 1), logits.data());
    single.forward(std::span<const infer::Chunk>(&c, 1), one.data());
  }
  for (int64_t step = 0; step < 6; ++step) {
    std::vector<infer::Chunk> cs;
    // A different subset and order each step: sequence s sits out on step s.
    for (int64_t s = S - 1; s >= 0; --s)
      if (s != step) cs.push_back({s, std::span<const int32_t>(conts[s]).subspan(step, 1)});
    batched.forward(cs, logits.data());
    for (size_t i = 0; i < cs.size(); ++i) {
      single.forward(std::span<const infer::Chunk>(&cs[i], 1), one.data());
      for (int64_t v = 0; v < V; ++v) ASSERT_EQ(logits[i * V + v], one[v]) << "seq " << cs[i].seq << " step " << step;
    }
    if (step < S) {  // let the sequence that sat out catch up alone
      infer::Chunk c{step, std::span<const int32_t>(conts[step]).subspan(step, 1)};
      batched.forward(std::span<const infer::Chunk>(&c, 1), one.data());
      single.forward(std::span<const infer::Chunk>(&c, 1), one.data());
    }
  }
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
  double err = 0, ref = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    err += (got[i] - want[i]) * (got[i] - want[i]);
    ref += want[i] * want[i];
  }
  EXPECT_LT(std::sqrt(err / ref), 2e-2);  // bf16 keeps 8 bits of mantissa
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
