// Quantized models end to end: the quantize step (schemes, embedding/LM head options), the file
// format (round trip, corrupt files), and the engine on the integer kernels against an
// independent reference: the same model computed in f32 with the quantization simulated
// (compress/simulated_quant.h).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "engine_test_util.h"
#include "gannet/autograd/tape.h"
#include "gannet/compress/input_statistics.h"
#include "gannet/compress/layerwise_gpt.h"
#include "gannet/compress/quant_config.h"
#include "gannet/compress/quant_scheme.h"
#include "gannet/compress/simulated_quant.h"
#include "gannet/core/rng.h"
#include "gannet/infer/engine.h"
#include "gannet/io/safetensors.h"
#include "test_files.h"

using namespace gannet;
using namespace gannet::testing;
namespace c = gannet::compress;

namespace {
models::GptConfig tiny() {
  return small_config(67, 48, 3, 24);  // n_embd 24: not a multiple of the groups, padded
}

io::GptWeights random_weights(uint64_t seed) {
  models::Gpt m(tiny());
  m.init(seed);
  Rng rng(seed + 7);
  io::GptWeights w;
  w.config = m.config();
  for (const auto& p : m.parameters()) {
    Tensor t = p.var.value().clone();
    if (p.name.find("ln_") != std::string::npos || p.name.find("bias") != std::string::npos)
      for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] += 0.2f * rng.normal();
    w.tensors[p.name] = t;
  }
  return w;
}

// Logits of every position, computed block by block in f32 with the model's recorded input
// quantization simulated (its weights dequantized).
std::vector<float> simulated_logits(const io::GptWeights& q, const std::vector<int32_t>& ids) {
  autograd::NoGrad ng;
  c::LayerwiseGpt m(q);
  const int64_t T = (int64_t)ids.size();
  autograd::Var x = m.embed(token_tensor(ids));
  for (int64_t l = 0; l < q.config.n_layer; ++l)
    x = c::simulated_block_forward(m.block(l), c::recorded_block_quant(q, l), x, 1, T);
  Tensor lg = m.logits(x).value();
  return std::vector<float>(lg.f32(), lg.f32() + lg.numel());
}

}  // namespace

TEST(QuantizedModel, EngineMatchesTheSimulatedReferenceForEveryScheme) {
  const io::GptWeights fp = random_weights(1);
  const auto ids = random_ids(40, 67, 3);  // prefill above the decode kernels' row count
  for (const std::string& scheme : c::scheme_names())
    for (int64_t group : {0, 32, 64})
      for (bool sym : {true, false}) {
        const io::GptWeights q = c::quantize_model(fp, c::scheme_preset(scheme, options(group, sym)));
        const std::string what = str(scheme, " group ", group, sym ? " sym" : " asym");
        const auto want = simulated_logits(q, ids);
        infer::Engine e(q, {});
        std::vector<float> got(ids.size() * 67);
        e.forward_all({0, ids}, got.data());
        // Prefill (integer GEMM path): integer sums are exact; the rest is f32 rounding, which can
        // move an activation across a rounding boundary now and then.
        EXPECT_LT(max_rel_error(got, want), 2e-3) << what;
        // Decode, one token at a time after a prefix.
        const auto rows = prefill_then_decode(e, ids, 30, 67);
        for (int64_t i = 30; i < 40; ++i) {
          std::vector<float> ref(want.begin() + i * 67, want.begin() + (i + 1) * 67);
          EXPECT_LT(max_rel_error(rows[i - 30 + 1], ref), 2e-3) << what << " decode " << i;
        }
      }
}

TEST(QuantizedModel, QuantizationChangesTheModelLittle) {
  // Against the float model itself: int8 close, int4 further but still near.
  const io::GptWeights fp = random_weights(2);
  const auto ids = random_ids(20, 67, 5);
  infer::Engine ef(fp, {});
  std::vector<float> want(20 * 67), got(20 * 67);
  ef.forward_all({0, ids}, want.data());
  for (auto [scheme, tol] : std::vector<std::pair<std::string, double>>{{"w8a16", 0.01}, {"w8a8", 0.03}, {"w4a16", 0.15}}) {
    infer::Engine e(c::quantize_model(fp, c::scheme_preset(scheme, options(32, true))), {});
    e.forward_all({0, ids}, got.data());
    EXPECT_LT(max_rel_error(got, want), tol) << scheme;
  }
}

TEST(QuantizedModel, BatchedDecodeEqualsSingleDecodeBitwise) {
  const io::GptWeights q = c::quantize_model(random_weights(3), c::scheme_preset("mixed", options(32, false)));
  expect_batched_step_equals_single_runs_bitwise(q, 67);
}

TEST(QuantizedModel, EmbeddingAndHeadAreConfigurableApart) {
  const io::GptWeights fp = random_weights(4);
  c::SchemeOptions o = options(32, true);
  o.embedding = "int8";
  o.lm_head = "int4";
  const io::GptWeights q = c::quantize_model(fp, c::scheme_preset("w8a8", o));
  EXPECT_EQ(q.quantized.at("wte.weight").bits, 8);
  EXPECT_EQ(q.quantized.at("lm_head.weight").bits, 4);
  const auto ids = random_ids(12, 67, 8);
  infer::Engine e(q, {});
  std::vector<float> got(12 * 67);
  e.forward_all({0, ids}, got.data());
  EXPECT_LT(max_rel_error(got, simulated_logits(q, ids)), 2e-3);
  o.embedding = "f32";
  o.lm_head = "f32";
  const io::GptWeights f = c::quantize_model(fp, c::scheme_preset("w4a16", o));
  EXPECT_FALSE(f.quantized.count("wte.weight"));
  o.embedding = "int8";
  EXPECT_THROW(c::scheme_preset("w8a8", o), Error);  // quantized embedding, f32 head: one tensor
  o.embedding = "int3";
  EXPECT_THROW(c::scheme_preset("w8a8", o), Error);
  EXPECT_THROW(c::scheme_preset("w2a8", options(32, true)), Error);
}

class QuantizedFile : public TempDirTest {};

TEST_F(QuantizedFile, RoundTripKeepsEveryIntegerAndTheSameLogits) {
  const io::GptWeights q = c::quantize_model(random_weights(5), c::scheme_preset("mixed", options(32, false)));
  io::write_gpt_weights(file("m.safetensors"), q);
  const io::GptWeights r = io::read_gpt_weights(file("m.safetensors"));
  EXPECT_EQ(r.scheme, "mixed");
  ASSERT_EQ(r.quantized.size(), q.quantized.size());
  for (const auto& [name, t] : q.quantized) {
    const io::QuantizedTensor& u = r.quantized.at(name);
    EXPECT_EQ(u.bits, t.bits);
    EXPECT_EQ(u.group, t.group);
    EXPECT_EQ(u.in, t.in);
    ASSERT_EQ(u.q.nbytes(), t.q.nbytes());
    EXPECT_EQ(std::memcmp(u.q.raw(), t.q.raw(), t.q.nbytes()), 0) << name;
    EXPECT_EQ(std::memcmp(u.scale.raw(), t.scale.raw(), t.scale.nbytes()), 0) << name;
    EXPECT_EQ(std::memcmp(u.zero.raw(), t.zero.raw(), t.zero.nbytes()), 0) << name;
    EXPECT_TRUE(r.activation(name) == q.activation(name)) << name;
  }
  const auto ids = random_ids(10, 67, 9);
  infer::Engine a(q, {}), b(r, {});
  std::vector<float> la(10 * 67), lb(10 * 67);
  a.forward_all({0, ids}, la.data());
  b.forward_all({0, ids}, lb.data());
  EXPECT_EQ(la, lb);
}

TEST_F(QuantizedFile, CorruptOrMismatchedFilesFailClearly) {
  const io::GptWeights q = c::quantize_model(random_weights(6), c::scheme_preset("w4a8", options(32, true)));
  io::write_gpt_weights(file("good.safetensors"), q);
  const io::SafeTensors good = io::SafeTensors::open(file("good.safetensors"));
  auto rewrite = [&](const std::string& name, auto change_tensors, auto change_meta) {
    return rewrite_safetensors(good, file(name), change_tensors, change_meta);
  };
  auto keep = [](auto&) {};
  // A scale tensor missing.
  std::string p = rewrite("noscale.safetensors", [](auto& ts) {
    std::erase_if(ts, [](const auto& e) { return e.first == "h.0.mlp.c_fc.weight.scale"; });
  }, keep);
  EXPECT_TRUE(has(message_of([&] { io::read_gpt_weights(p); }), "h.0.mlp.c_fc.weight.scale"));
  // Integers of the wrong shape.
  p = rewrite("shape.safetensors", [](auto& ts) {
    for (auto& e : ts)
      if (e.first == "h.1.attn.c_proj.weight.q") e.second = Tensor::zeros({24, 8}, DType::u8);
  }, keep);
  EXPECT_TRUE(has(message_of([&] { io::read_gpt_weights(p); }), "h.1.attn.c_proj.weight"));
  // Metadata claiming 8 bits for 4-bit integers.
  p = rewrite("bits.safetensors", keep, [](auto& meta) {
    auto j = nlohmann::json::parse(meta["quantization"]);
    j["weights"]["h.0.attn.c_attn.weight"]["bits"] = 8;
    meta["quantization"] = j.dump();
  });
  EXPECT_TRUE(has(message_of([&] { io::read_gpt_weights(p); }), "h.0.attn.c_attn.weight"));
  // Unknown metadata keys and unparsable metadata.
  p = rewrite("key.safetensors", keep, [](auto& meta) {
    auto j = nlohmann::json::parse(meta["quantization"]);
    j["weights"]["h.0.attn.c_attn.weight"]["bitz"] = 8;
    meta["quantization"] = j.dump();
  });
  EXPECT_TRUE(has(message_of([&] { io::read_gpt_weights(p); }), "bitz"));
  p = rewrite("json.safetensors", keep, [](auto& meta) { meta["quantization"] = "{not json"; });
  EXPECT_THROW(io::read_gpt_weights(p), Error);
  // A quantized entry for something that is not a weight matrix.
  p = rewrite("name.safetensors", keep, [](auto& meta) {
    auto j = nlohmann::json::parse(meta["quantization"]);
    j["weights"]["ln_f.weight"] = j["weights"]["h.0.attn.c_attn.weight"];
    meta["quantization"] = j.dump();
  });
  EXPECT_TRUE(has(message_of([&] { io::read_gpt_weights(p); }), "ln_f.weight"));
  // Quantizing an already quantized model.
  EXPECT_THROW(c::quantize_model(q, c::scheme_preset("w8a8", options(32, true))), Error);
}

// The INT4 paper's decoder settings: int4 inputs in the MLP only (A8 attention) from a config, and
// asymmetric int4 inputs from the preset; each file keeps every product's inputs, and the engine
// on int4 inputs matches the simulated model.
TEST_F(QuantizedFile, Int4InputsRoundTripAndMatchTheSimulatedModel) {
  const std::string mixed_inputs = R"({"compression_training": {
    "weight_quantization": {"shared_parameters": {"enabled": true, "group_size": 32},
      "different_groups": {"wq1": {"params": {"start_bits": 4, "target_bits": 4},
                                   "modules": ["attn", "mlp", "embedding", "lm_head"]}}},
    "activation_quantization": {"shared_parameters": {"enabled": true},
      "different_groups": {"aq1": {"params": {"bits": 8}, "modules": ["attn"]},
                           "aq2": {"params": {"bits": 4}, "modules": ["mlp"]}}}}})";
  c::SchemeOptions asym = options(32, true);
  asym.asymmetric_activations = true;
  const auto ids = random_ids(36, 67, 4);
  for (const c::QuantScheme& s : {c::scheme_from_config(mixed_inputs, "x.json"), c::scheme_preset("w4a4", asym)}) {
    const io::GptWeights q = c::quantize_model(random_weights(7), s);
    const bool preset = s.name == "w4a4";
    EXPECT_EQ(q.activation("h.0.attn.c_attn.weight"), (io::ActivationQuant{true, 0.f, preset ? 4 : 8, preset}));
    EXPECT_EQ(q.activation("h.1.mlp.c_proj.weight"), (io::ActivationQuant{true, 0.f, 4, preset}));
    io::write_gpt_weights(file("a4.safetensors"), q);
    const io::GptWeights r = io::read_gpt_weights(file("a4.safetensors"));
    for (const auto& [name, t] : q.quantized) EXPECT_EQ(r.activation(name), q.activation(name)) << name;
    infer::Engine e(r, {});
    std::vector<float> got(ids.size() * 67);
    e.forward_all({0, ids}, got.data());
    EXPECT_LT(max_rel_error(got, simulated_logits(q, ids)), 2e-3) << s.describe();
  }
  c::SchemeOptions bad = options(32, true);
  bad.asymmetric_activations = true;
  EXPECT_THROW(c::scheme_preset("w4a8", bad), Error);
  bad.asymmetric_activations = false;
  bad.static_activations = true;
  EXPECT_THROW(c::scheme_preset("w4a4", bad), Error);
}

// The input statistics against their definitions, recomputed here from the float blocks' product
// inputs on the same two batches.
TEST(InputStatistics, FollowTheirDefinitions) {
  const io::GptWeights fp = random_weights(11);
  std::vector<Tensor> batches;
  for (uint64_t s : {1, 2}) {
    const auto ids = random_ids(2 * 12, 67, s);
    Tensor t = Tensor::empty({2, 12}, DType::i32);
    std::copy(ids.begin(), ids.end(), t.data<int32_t>());
    batches.push_back(t);
  }
  const auto stats = c::input_statistics(fp, batches);
  const int64_t L = fp.config.n_layer, P = 4 * L;
  ASSERT_EQ((int64_t)stats.size(), P);
  // The inputs, gathered per product.
  autograd::NoGrad ng;
  c::LayerwiseGpt m(fp);
  std::vector<std::vector<std::vector<float>>> rows((size_t)P);  // [product][token][channel]
  for (const Tensor& b : batches) {
    autograd::Var x = m.embed(b);
    for (int64_t l = 0; l < L; ++l) {
      const auto in = c::block_product_inputs(m.block(l), x, 2, 12);
      for (int p = 0; p < 4; ++p)
        for (int64_t r = 0; r < in[p].dim(0); ++r)
          rows[l * 4 + p].emplace_back(in[p].f32() + r * in[p].dim(1), in[p].f32() + (r + 1) * in[p].dim(1));
      x = m.block(l).forward(x, 2, 12, true, Tensor());
    }
  }
  for (size_t p = 0; p < (size_t)P; ++p) {
    const c::InputStatistics& s = stats[p];
    EXPECT_EQ(s.product, str("h.", p / 4, ".", c::kBlockProducts[p % 4], ".weight"));
    EXPECT_EQ(s.tokens, 48);
    const int64_t K = (int64_t)rows[p][0].size();
    std::vector<float> cmax((size_t)K, 0.f);
    double balance = 0;
    for (const auto& r : rows[p]) {
      float lo = 0, hi = 0;
      for (int64_t k = 0; k < K; ++k) {
        cmax[(size_t)k] = std::max(cmax[(size_t)k], std::fabs(r[(size_t)k]));
        lo = std::min(lo, r[(size_t)k]);
        hi = std::max(hi, r[(size_t)k]);
      }
      balance += std::min(-lo, hi) / std::max(-lo, hi);
    }
    const int64_t top = std::max_element(cmax.begin(), cmax.end()) - cmax.begin();
    EXPECT_EQ(s.top_channels.front(), top) << s.product;
    EXPECT_EQ(s.max_abs, cmax[(size_t)top]) << s.product;
    std::vector<float> sorted = cmax;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(s.median_channel_max, sorted[sorted.size() / 2]) << s.product;
    EXPECT_NEAR(s.balance, balance / 48, 1e-9) << s.product;
    // Coarser quantizers leave more error; every error is a small fraction of the signal.
    EXPECT_LT(s.error_int8, s.error_int4) << s.product;
    EXPECT_LT(s.error_int4, 0.5) << s.product;
    EXPECT_GT(s.error_int8, 0.0) << s.product;
  }
  // The GELU output (mlp.c_proj's input) is the one-sided one.
  EXPECT_LT(stats[3].balance, stats[2].balance);
}
