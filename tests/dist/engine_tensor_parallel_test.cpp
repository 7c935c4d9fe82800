// Tensor-parallel inference (EngineOptions::tensor_parallel) on every rank of the world against
// the one-process engine each rank also builds: logits within 1e-5 relative and the same greedy
// tokens, for a prompt then decode steps and for a batch of sequences decoded together, f32 and
// bf16, and quantized (W8A8, W4A8, W8A16); int4 inputs are refused with one clear error.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "../engine_test_util.h"
#include "gannet/compress/quant_scheme.h"
#include "gannet/compress/quantizer.h"
#include "gannet/core/error.h"
#include "gannet/dist/world.h"

namespace gannet {
namespace {

constexpr int64_t kVocab = 97;  // not a multiple of the group: the last rank's rows are padded

io::GptWeights weights(int64_t n_embd = 64) {
  const models::Gpt m = testing::perturbed_model(testing::small_config(kVocab, 64, 4, n_embd, 3), 11,
                                                 [](const std::string& n) { return n.find("ln_") != std::string::npos ? 0.3f : 0.05f; });
  return testing::weights_of(m);
}

// Each row of got against want: largest difference over the row's largest magnitude, and argmax.
void expect_close(const std::vector<std::vector<float>>& got, const std::vector<std::vector<float>>& want,
                  double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t s = 0; s < got.size(); ++s) {
    ASSERT_EQ(got[s].size(), want[s].size());
    for (size_t r = 0; r < got[s].size(); r += kVocab) {
      double diff = 0, scale = 0;
      for (int64_t v = 0; v < kVocab; ++v) {
        diff = std::max(diff, (double)std::abs(got[s][r + v] - want[s][r + v]));
        scale = std::max(scale, (double)std::abs(want[s][r + v]));
      }
      EXPECT_LE(diff, tol * scale) << "step " << s << " row " << r / kVocab;
      const auto g = std::max_element(got[s].begin() + r, got[s].begin() + r + kVocab) - (got[s].begin() + r);
      const auto w = std::max_element(want[s].begin() + r, want[s].begin() + r + kVocab) - (want[s].begin() + r);
      EXPECT_EQ(g, w) << "greedy token, step " << s << " row " << r / kVocab;
    }
  }
}

// Five sequences given prompts of 3 tokens, then four decode steps of all five together.
std::vector<std::vector<float>> batch(infer::Engine& e) {
  const std::vector<int32_t> ids = testing::random_ids(40, kVocab, 5);
  std::vector<std::vector<float>> out;
  std::vector<infer::Chunk> chunks;
  for (int64_t b = 0; b < 5; ++b) chunks.push_back({b, std::span<const int32_t>(ids).subspan(b * 3, 3)});
  out.emplace_back(5 * kVocab);
  e.forward(chunks, out.back().data());
  for (int64_t s = 0; s < 4; ++s) {
    for (int64_t b = 0; b < 5; ++b) chunks[b] = {b, std::span<const int32_t>(ids).subspan(15 + s * 5 + b, 1)};
    out.emplace_back(5 * kVocab);
    e.forward(chunks, out.back().data());
  }
  return out;
}

TEST(EngineTensorParallel, MatchesOneProcess) {
  const io::GptWeights w = weights();
  const std::vector<int32_t> ids = testing::random_ids(24, kVocab, 3);
  for (const char* format : {"f32", "bf16"}) {
    infer::EngineOptions o;
    o.weights = infer::parse_weight_format(format);
    o.max_sequences = 5;
    infer::Engine one(w, o);
    o.tensor_parallel = &dist::world();
    infer::Engine group(w, o);
    expect_close(testing::prefill_then_decode(group, ids, 10, kVocab), testing::prefill_then_decode(one, ids, 10, kVocab),
                 1e-5);
    expect_close(batch(group), batch(one), 1e-5);
  }
}

// W8A8 (token-wise int8 inputs: row-parallel products take each row's scale from the whole row),
// W4A8 and weight-only W8A16, the embedding and LM head quantized too: the one-process engine's
// greedy tokens, and its logits within 1e-5 without int8 inputs. With them, the residual stream's
// last bits differ (the ranks' partial sums add in another order), which now and then moves a
// LayerNorm output across an int8 rounding boundary: one step of one input, under 2% of a logit.
TEST(EngineTensorParallel, QuantizedMatchesOneProcess) {
  const std::vector<int32_t> ids = testing::random_ids(24, kVocab, 3);
  for (const auto& [scheme, tol] : {std::pair<const char*, double>{"w8a8", 2e-2}, {"w4a8", 2e-2}, {"w8a16", 1e-5}}) {
    SCOPED_TRACE(scheme);
    // Width 128, groups of 32: on 4 ranks attn.c_proj's 32 columns are one group.
    const io::GptWeights q = compress::quantize_model(weights(128), compress::scheme_preset(scheme, testing::options(32)));
    infer::EngineOptions o;
    o.max_sequences = 5;
    infer::Engine one(q, o);
    o.tensor_parallel = &dist::world();
    infer::Engine group(q, o);
    expect_close(testing::prefill_then_decode(group, ids, 10, kVocab), testing::prefill_then_decode(one, ids, 10, kVocab),
                 tol);
    expect_close(batch(group), batch(one), tol);
  }
}

TEST(EngineTensorParallel, RefusesInt4Inputs) {
  const io::GptWeights q = compress::quantize_model(weights(128), compress::scheme_preset("w4a4", testing::options(32)));
  infer::EngineOptions o;
  o.tensor_parallel = &dist::world();
  try {
    infer::Engine e(q, o);
    FAIL() << "int4 inputs were taken";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("symmetric int8 inputs"), std::string::npos) << err.what();
  }
}

// An MoE model's experts split over the ranks by hidden units, or whole (expert parallelism), its
// attention and dense blocks tensor-parallel: top-1 and top-2, with and without PR-MoE's dense
// branch, f32 and W8A8.
TEST(EngineTensorParallel, MoeMatchesOneProcess) {
  const std::vector<int32_t> ids = testing::random_ids(24, kVocab, 3);
  for (const auto& [k, residual] : {std::pair<int64_t, bool>{1, false}, {2, false}, {2, true}}) {
    models::GptConfig c = testing::small_config(kVocab, 64, 4, 128, 2);
    c.moe.num_experts = {4};  // block 1
    c.moe.k = k;
    c.moe.drop_tokens = false;
    c.moe.use_residual = residual;
    const io::GptWeights f = testing::weights_of(testing::perturbed_model(c, 5, [](const std::string& n) {
      return n.find(".moe.") != std::string::npos || n.find("wte") != std::string::npos ? 0.3f
             : n.find("ln_") != std::string::npos                                         ? 0.3f
                                                                                          : 0.05f;
    }));
    const io::GptWeights q = compress::quantize_model(f, compress::scheme_preset("w8a8", testing::options(32)));
    for (const auto& [w, tol] : {std::pair<const io::GptWeights*, double>{&f, 1e-5}, {&q, 2e-2}}) {
      infer::EngineOptions o;
      o.max_sequences = 5;
      infer::Engine one(*w, o);
      const auto want = testing::prefill_then_decode(one, ids, 10, kVocab);
      const auto want_batch = batch(one);
      o.tensor_parallel = &dist::world();
      for (bool whole : {false, true}) {
        SCOPED_TRACE(str("top-", k, residual ? " PR-MoE" : "", w == &q ? " w8a8" : " f32",
                         whole ? " whole experts" : " experts split"));
        o.expert_parallel = whole;
        infer::Engine group(*w, o);
        expect_close(testing::prefill_then_decode(group, ids, 10, kVocab), want, tol);
        expect_close(batch(group), want_batch, tol);
      }
    }
  }
}

// Not a test of its own: `GANNET_DIST_DIE=1 mpirun -np 2 gannet_dist_tests --gtest_filter=Death.*`,
// run by the single-process tests (TensorParallelFailure), checks that a rank dying between two
// decode steps ends the job instead of leaving rank 0 waiting in the step's all-reduce.
TEST(Death, TensorParallelEngineRankThatDiesEndsTheJob) {
  if (!std::getenv("GANNET_DIST_DIE")) GTEST_SKIP() << "run by TensorParallelFailure.DeadRankEndsTheJob";
  infer::EngineOptions o;
  o.tensor_parallel = &dist::world();
  infer::Engine e(weights(), o);
  const std::vector<int32_t> ids = testing::random_ids(4, kVocab, 3);
  std::vector<float> logits(kVocab);
  const infer::Chunk prompt{0, std::span<const int32_t>(ids).subspan(0, 3)};
  e.forward(std::span<const infer::Chunk>(&prompt, 1), logits.data());
  if (dist::world().rank() == 1) _exit(3);
  const infer::Chunk step{0, std::span<const int32_t>(ids).subspan(3, 1)};
  e.forward(std::span<const infer::Chunk>(&step, 1), logits.data());  // never completes: rank 1 is gone
}

}  // namespace
}  // namespace gannet
