// Quantized Mixture-of-Experts models: each expert tensor [E, out, in] quantized whole as one
// [E * out, in] matrix (each expert's rows exactly as its own matrix would quantize), the router
// and the PR-MoE coefficient kept in f32; the scheme rules (experts take the MLP's); the file
// (sizes, round trip, shapes checked against the config); the engine on the integer kernels against
// an independent f32 reference (every weight dequantized, int8 inputs fake-quantized token-wise);
// `gannet quantize` end to end; LKD and static activation scales refused.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine_test_util.h"
#include "gannet/compress/lkd.h"
#include "gannet/compress/quant_config.h"
#include "gannet/compress/quant_scheme.h"
#include "gannet/compress/quantizer.h"
#include "gannet/core/rng.h"
#include "gannet/data/token_file.h"
#include "gannet/infer/engine.h"
#include "gannet/io/checkpoint.h"
#include "gannet/io/safetensors.h"
#include "test_files.h"

using namespace gannet;
using namespace gannet::testing;
namespace c = gannet::compress;

namespace {
constexpr int64_t kVocab = 64, kC = 32, kE = 4;

struct Variant {
  const char* name;
  int64_t k;
  int64_t interval;  // 1: both blocks MoE; 2: block 0 dense, block 1 MoE
  bool residual;     // PR-MoE
};
void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

const Variant kVariants[] = {{"k1", 1, 1, false}, {"k2", 2, 2, false}, {"k2_both", 2, 1, false}, {"k1_residual", 1, 1, true}};

models::GptConfig moe_config(const Variant& v) {
  models::GptConfig cfg = small_config(kVocab, 48, 2, kC);
  cfg.moe.num_experts = {kE};
  cfg.moe.expert_interval = v.interval;
  cfg.moe.k = v.k;
  cfg.moe.drop_tokens = false;
  cfg.moe.use_residual = v.residual;
  return cfg;
}

models::Gpt random_model(const models::GptConfig& cfg, uint64_t seed) {
  models::Gpt m(cfg);
  m.init(seed);
  return m;
}

// Random weights: LayerNorms and biases perturbed (init leaves them at 1 and 0); the embeddings and
// the router scaled up, so that tokens differ enough to spread over the experts (otherwise the
// biases dominate the residual stream and every token picks the same ones) and routing is decided
// by clear margins.
io::GptWeights random_weights(const models::GptConfig& cfg, uint64_t seed) {
  const models::Gpt m = random_model(cfg, seed);
  Rng rng(seed + 7);
  io::GptWeights w;
  w.config = cfg;
  for (const auto& p : m.parameters()) {
    Tensor t = p.var.value().clone();
    if (p.name.find("ln_") != std::string::npos)
      for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] += 0.2f * rng.normal();
    if (p.name.find("bias") != std::string::npos)
      for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] += 0.05f * rng.normal();
    if (p.name.find("moe.gate") != std::string::npos || p.name.starts_with("wte") || p.name.starts_with("wpe"))
      for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] *= 10.f;
    w.tensors[p.name] = t;
  }
  return w;
}

// The median |got - want| over the largest |want|: a rounding difference that moves an activation
// across a quantization boundary changes a few rows, anything systematic (an input left in f32, a
// wrong scale) shows in most of them.
double median_rel_error(const std::vector<float>& got, const std::vector<float>& want) {
  double scale = 0;
  for (float v : want) scale = std::max(scale, (double)std::fabs(v));
  std::vector<double> d(got.size());
  for (size_t i = 0; i < got.size(); ++i) d[i] = std::fabs(got[i] - want[i]);
  std::nth_element(d.begin(), d.begin() + d.size() / 2, d.end());
  return d[d.size() / 2] / scale;
}

// ---- The independent reference: plain loops in f32 over a float copy of the weights. ----

// Every weight of a quantized model in f32: the quantized ones dequantized (expert tensors one
// expert at a time, from their row slices), the rest as stored.
io::GptWeights dequantized(const io::GptWeights& q) {
  io::GptWeights f;
  f.config = q.config;
  for (const auto& [name, shape] : io::gpt_weight_shapes(q.config)) {
    auto it = q.quantized.find(name);
    if (it == q.quantized.end()) {
      f.tensors[name] = as_f32(q.at(name, shape)).clone();
      continue;
    }
    Tensor t = Tensor::empty(shape);
    const int64_t out = shape.size() == 3 ? shape[1] : shape[0], parts = shape.size() == 3 ? shape[0] : 1;
    for (int64_t e = 0; e < parts; ++e) {
      const Tensor d = it->second.row_slice(e * out, (e + 1) * out).dequantize();
      std::memcpy(t.f32() + e * d.numel(), d.f32(), d.nbytes());
    }
    f.tensors[name] = t;
  }
  if (auto head = q.quantized.find("lm_head.weight"); head != q.quantized.end())
    f.tensors["lm_head.weight"] = head->second.dequantize();
  return f;
}

struct Reference {
  const io::GptWeights& w;  // f32 (dequantized)
  const io::GptWeights& q;  // the quantized model: which inputs are int8
  std::vector<int> usage = std::vector<int>(kE, 0);  // tokens each expert index got, over the MoE blocks
  double min_margin = 1e30;  // smallest gap between a token's k-th and (k+1)-th router probability

  const float* p(const std::string& name) const { return w.tensors.at(name).f32(); }

  // Y [M, out] = X [M, in] W^T + b, X fake-quantized to int8 first when the model says so.
  std::vector<float> product(const std::string& weight, const float* W, const float* b, std::vector<float> X,
                             int64_t M, int64_t out, int64_t in) const {
    const io::ActivationQuant a = q.activation(weight);
    if (a.quantized) c::fake_quantize_activations(X.data(), M, in, a.static_scale, X.data());
    std::vector<float> Y(M * out);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < out; ++n) {
        double s = b ? b[n] : 0.0;
        for (int64_t k = 0; k < in; ++k) s += (double)X[m * in + k] * W[n * in + k];
        Y[m * out + n] = (float)s;
      }
    return Y;
  }
  std::vector<float> layernorm(const std::vector<float>& X, int64_t M, const std::string& ln) const {
    const float *g = p(ln + ".weight"), *b = p(ln + ".bias");
    std::vector<float> Y(X.size());
    for (int64_t m = 0; m < M; ++m) {
      double mean = 0, var = 0;
      for (int64_t k = 0; k < kC; ++k) mean += X[m * kC + k];
      mean /= kC;
      for (int64_t k = 0; k < kC; ++k) var += (X[m * kC + k] - mean) * (X[m * kC + k] - mean);
      const double inv = 1.0 / std::sqrt(var / kC + w.config.layernorm_eps);
      for (int64_t k = 0; k < kC; ++k) Y[m * kC + k] = (float)((X[m * kC + k] - mean) * inv * g[k] + b[k]);
    }
    return Y;
  }
  static void gelu(std::vector<float>& x) {
    for (float& v : x) v = (float)(0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v))));
  }
  // The dense MLP of block h on rows X [M, C].
  std::vector<float> mlp(const std::string& h, const std::vector<float>& X, int64_t M) const {
    std::vector<float> a = product(h + "mlp.c_fc.weight", p(h + "mlp.c_fc.weight"), p(h + "mlp.c_fc.bias"), X, M, 4 * kC, kC);
    gelu(a);
    return product(h + "mlp.c_proj.weight", p(h + "mlp.c_proj.weight"), p(h + "mlp.c_proj.bias"), a, M, kC, 4 * kC);
  }
  // Expert e of block h on one row.
  std::vector<float> expert(const std::string& h, int64_t e, const float* x) const {
    const std::string fc = h + "moe.experts.c_fc.weight", pr = h + "moe.experts.c_proj.weight";
    std::vector<float> a = product(fc, p(fc) + e * 4 * kC * kC, p(h + "moe.experts.c_fc.bias") + e * 4 * kC,
                                   std::vector<float>(x, x + kC), 1, 4 * kC, kC);
    gelu(a);
    return product(pr, p(pr) + e * kC * 4 * kC, p(h + "moe.experts.c_proj.bias") + e * kC, a, 1, kC, 4 * kC);
  }
  std::vector<float> moe(const std::string& h, const std::vector<float>& X, int64_t M) {
    const int64_t k = w.config.moe.k;
    std::vector<float> Y(M * kC, 0.f);
    const std::vector<float> logits = product(h + "moe.gate.weight", p(h + "moe.gate.weight"), nullptr, X, M, kE, kC);
    for (int64_t m = 0; m < M; ++m) {
      std::vector<double> pr(kE);
      double mx = -1e30, z = 0;
      for (int64_t e = 0; e < kE; ++e) mx = std::max(mx, (double)logits[m * kE + e]);
      for (int64_t e = 0; e < kE; ++e) z += (pr[e] = std::exp(logits[m * kE + e] - mx));
      for (double& v : pr) v /= z;
      std::vector<int64_t> order(kE);
      for (int64_t e = 0; e < kE; ++e) order[e] = e;
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return pr[a] > pr[b]; });
      min_margin = std::min(min_margin, pr[order[k - 1]] - pr[order[k]]);
      double sum = 0;
      for (int64_t j = 0; j < k; ++j) sum += pr[order[j]];
      for (int64_t j = 0; j < k; ++j) usage[order[j]]++;
      for (int64_t j = 0; j < k; ++j) {
        const double g = k > 1 ? pr[order[j]] / sum : pr[order[j]];
        const std::vector<float> y = expert(h, order[j], X.data() + m * kC);
        for (int64_t i = 0; i < kC; ++i) Y[m * kC + i] += (float)(g * y[i]);
      }
    }
    if (!w.config.moe.use_residual) return Y;
    const std::vector<float> dense = mlp(h, X, M);
    const std::vector<float> mix =
        product(h + "moe.coefficient.weight", p(h + "moe.coefficient.weight"), p(h + "moe.coefficient.bias"), X, M, 2, kC);
    for (int64_t m = 0; m < M; ++m) {
      const double mx = std::max(mix[2 * m], mix[2 * m + 1]);
      const double a = std::exp(mix[2 * m] - mx), b = std::exp(mix[2 * m + 1] - mx);
      for (int64_t i = 0; i < kC; ++i) Y[m * kC + i] = (float)((a * Y[m * kC + i] + b * dense[m * kC + i]) / (a + b));
    }
    return Y;
  }

  // Logits of every position of one sequence.
  std::vector<float> logits(const std::vector<int32_t>& ids) {
    const int64_t T = (int64_t)ids.size(), H = w.config.n_head, D = kC / H;
    std::vector<float> x(T * kC);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < kC; ++i) x[t * kC + i] = p("wte.weight")[ids[t] * kC + i] + p("wpe.weight")[t * kC + i];
    for (int64_t l = 0; l < w.config.n_layer; ++l) {
      const std::string h = str("h.", l, ".");
      const std::vector<float> qkv =
          product(h + "attn.c_attn.weight", p(h + "attn.c_attn.weight"), p(h + "attn.c_attn.bias"), layernorm(x, T, h + "ln_1"),
                  T, 3 * kC, kC);
      std::vector<float> att(T * kC);
      for (int64_t hd = 0; hd < H; ++hd)
        for (int64_t t = 0; t < T; ++t) {
          std::vector<double> s(t + 1);
          double mx = -1e30, z = 0;
          for (int64_t u = 0; u <= t; ++u) {
            double d = 0;
            for (int64_t i = 0; i < D; ++i) d += (double)qkv[t * 3 * kC + hd * D + i] * qkv[u * 3 * kC + kC + hd * D + i];
            s[u] = d / std::sqrt((double)D);
            mx = std::max(mx, s[u]);
          }
          for (int64_t u = 0; u <= t; ++u) z += (s[u] = std::exp(s[u] - mx));
          for (int64_t i = 0; i < D; ++i) {
            double o = 0;
            for (int64_t u = 0; u <= t; ++u) o += s[u] / z * qkv[u * 3 * kC + 2 * kC + hd * D + i];
            att[t * kC + hd * D + i] = (float)o;
          }
        }
      const std::vector<float> pr =
          product(h + "attn.c_proj.weight", p(h + "attn.c_proj.weight"), p(h + "attn.c_proj.bias"), att, T, kC, kC);
      for (int64_t i = 0; i < T * kC; ++i) x[i] += pr[i];
      const std::vector<float> n2 = layernorm(x, T, h + "ln_2");
      const std::vector<float> y = w.config.moe.experts_at(l, w.config.n_layer) > 0 ? moe(h, n2, T) : mlp(h, n2, T);
      for (int64_t i = 0; i < T * kC; ++i) x[i] += y[i];
    }
    const std::string head = w.tensors.count("lm_head.weight") ? "lm_head.weight" : "wte.weight";
    return product(head, p(head), nullptr, layernorm(x, T, "ln_f"), T, kVocab, kC);
  }
};

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

const std::vector<std::string> kSchemes = {"w8a8", "w4a16", "w8a16", "w4a8"};
}  // namespace

// ---- Row slices of a quantized matrix ----

TEST(MoeQuantRowSlice, EachExpertsRowsQuantizeAsItsOwnMatrixWould) {
  const int64_t E = 3, out = 20, in = 72;  // 72: padded to whole groups of 32
  Rng rng(3);
  std::vector<float> W(E * out * in);
  for (float& v : W) v = rng.normal();
  for (int bits : {8, 4})
    for (bool sym : {true, false}) {
      c::WeightQuantSpec s;
      s.bits = bits;
      s.group = 32;
      s.symmetric = sym;
      const io::QuantizedTensor whole = c::quantize_weights(W.data(), E * out, in, s);
      const Tensor all = whole.dequantize();
      for (int64_t e = 0; e < E; ++e) {
        const io::QuantizedTensor slice = whole.row_slice(e * out, (e + 1) * out);
        const io::QuantizedTensor own = c::quantize_weights(W.data() + e * out * in, out, in, s);
        slice.validate("slice");
        EXPECT_EQ(slice.rows, out);
        EXPECT_TRUE(slice.q.shares_storage(whole.q));
        ASSERT_EQ(slice.q.nbytes(), own.q.nbytes());
        EXPECT_EQ(std::memcmp(slice.q.raw(), own.q.raw(), own.q.nbytes()), 0) << bits << " expert " << e;
        EXPECT_EQ(std::memcmp(slice.scale.raw(), own.scale.raw(), own.scale.nbytes()), 0) << bits << " expert " << e;
        if (!sym) {
          EXPECT_EQ(std::memcmp(slice.zero.raw(), own.zero.raw(), own.zero.nbytes()), 0);
        }
        const Tensor d = slice.dequantize();
        EXPECT_EQ(std::memcmp(d.f32(), all.f32() + e * out * in, d.nbytes()), 0);
      }
      EXPECT_THROW(whole.row_slice(0, E * out + 1), Error);
      EXPECT_THROW(whole.row_slice(5, 5), Error);
      EXPECT_THROW(whole.row_slice(-1, 2), Error);
    }
}

// ---- Scheme rules ----

TEST(MoeQuantScheme, ExpertsAreProductsRouterAndCoefficientAreNot) {
  const auto names = c::layer_weight_names(moe_config({"", 1, 2, false}));
  const std::vector<std::string> want = {"h.0.attn.c_attn.weight", "h.0.attn.c_proj.weight", "h.0.mlp.c_fc.weight",
                                         "h.0.mlp.c_proj.weight",  "h.1.attn.c_attn.weight", "h.1.attn.c_proj.weight",
                                         "h.1.moe.experts.c_fc.weight", "h.1.moe.experts.c_proj.weight"};
  EXPECT_EQ(names, want);
  const auto pr = c::layer_weight_names(moe_config({"", 1, 1, true}));
  EXPECT_NE(std::find(pr.begin(), pr.end(), "h.0.mlp.c_fc.weight"), pr.end());
  EXPECT_NE(std::find(pr.begin(), pr.end(), "h.0.moe.experts.c_proj.weight"), pr.end());
  for (const auto& n : pr) {
    EXPECT_EQ(n.find("gate"), std::string::npos);
    EXPECT_EQ(n.find("coefficient"), std::string::npos);
  }
}

TEST(MoeQuantScheme, PresetsGiveExpertsTheMlpsFormat) {
  const std::string fc = "h.1.moe.experts.c_fc.weight", pr = "h.1.moe.experts.c_proj.weight";
  for (const std::string& name : c::scheme_names()) {
    const c::QuantScheme s = c::scheme_preset(name, options());
    for (const std::string& e : {fc, pr}) {
      const c::LinearQuant got = s.for_layer_weight(e), mlp = s.for_layer_weight("h.1.mlp.c_fc.weight");
      ASSERT_TRUE(got.weight) << name;
      EXPECT_EQ(got.weight->describe(), mlp.weight->describe()) << name;
      EXPECT_EQ(got.int8_activations, mlp.int8_activations) << name;
    }
  }
  // mixed: W8 attention, W4 MLP (and experts), A8 everywhere.
  const c::QuantScheme mixed = c::scheme_preset("mixed", options());
  EXPECT_EQ(mixed.for_layer_weight(fc).weight->bits, 4);
  EXPECT_TRUE(mixed.for_layer_weight(fc).int8_activations);
  EXPECT_EQ(mixed.for_layer_weight("h.1.attn.c_proj.weight").weight->bits, 8);
  // The router is not a product: no rule names it (quantize_model keeps it in f32 regardless).
  EXPECT_FALSE(mixed.for_layer_weight("h.1.moe.gate.weight").weight);
  EXPECT_FALSE(mixed.for_layer_weight("h.1.moe.coefficient.weight").weight);
}

TEST(MoeQuantScheme, ConfigModulesMatchExpertsByNameOrAsTheMlp) {
  auto scheme = [](const std::string& weight_groups, const std::string& act_modules) {
    return c::scheme_from_config(
        R"({"compression_training": {"weight_quantization": {"shared_parameters": {"enabled": true, "group_size": 32},
           "different_groups": )" + weight_groups + R"(},
           "activation_quantization": {"shared_parameters": {"enabled": true},
           "different_groups": {"aq": {"params": {"bits": 8}, "modules": )" + act_modules + "}}}}}",
        "moe.json");
  };
  const std::string fc = "h.1.moe.experts.c_fc.weight", pr = "h.1.moe.experts.c_proj.weight";
  // "mlp" names the experts too (they replace the block's MLP, as in DeepSpeed); "attn" does not.
  c::QuantScheme s = scheme(R"({"w": {"params": {"target_bits": 4}, "modules": ["mlp"]}})", R"(["mlp"])");
  EXPECT_EQ(s.for_layer_weight(fc).weight->bits, 4);
  EXPECT_EQ(s.for_layer_weight(pr).weight->bits, 4);
  EXPECT_TRUE(s.for_layer_weight(fc).int8_activations);
  EXPECT_FALSE(s.for_layer_weight("h.1.attn.c_attn.weight").weight);
  s = scheme(R"({"w": {"params": {"target_bits": 8}, "modules": ["attn"]}})", R"(["attn"])");
  EXPECT_FALSE(s.for_layer_weight(fc).weight);
  EXPECT_FALSE(s.for_layer_weight(fc).int8_activations);
  // Substrings of the expert names themselves: "experts" / "moe" only the experts, "c_proj" both
  // attention's and the experts' second product, "h.1." the whole block.
  s = scheme(R"({"a": {"params": {"target_bits": 8}, "modules": ["experts"]},
                 "b": {"params": {"target_bits": 4}, "modules": ["mlp"]}})",
             R"(["moe"])");
  EXPECT_EQ(s.for_layer_weight(fc).weight->bits, 8);  // the first group that matches decides
  EXPECT_EQ(s.for_layer_weight("h.0.mlp.c_fc.weight").weight->bits, 4);
  EXPECT_TRUE(s.for_layer_weight(pr).int8_activations);
  EXPECT_FALSE(s.for_layer_weight("h.0.mlp.c_fc.weight").int8_activations);
  s = scheme(R"({"w": {"params": {"target_bits": 8}, "modules": ["c_proj"]}})", R"(["c_proj"])");
  EXPECT_TRUE(s.for_layer_weight(pr).weight);
  EXPECT_TRUE(s.for_layer_weight("h.0.attn.c_proj.weight").weight);
  EXPECT_FALSE(s.for_layer_weight(fc).weight);
  s = scheme(R"({"w": {"params": {"target_bits": 4}, "modules": ["h.1.mlp.c_fc"]}})", R"(["h.1."])");
  EXPECT_TRUE(s.for_layer_weight(fc).weight);  // the dense name the expert stands for
  EXPECT_FALSE(s.for_layer_weight("h.0.moe.experts.c_fc.weight").weight);
  // int8 inputs for experts whose weights stay f32: an error, as for any product.
  s = scheme(R"({"w": {"params": {"target_bits": 4}, "modules": ["attn"]}})", R"(["experts"])");
  EXPECT_THROW(s.for_layer_weight(fc), Error);
}

TEST(MoeQuantScheme, EvenAllModulesLeaveRouterCoefficientAndBiasesInF32) {
  const io::GptWeights fp = random_weights(moe_config({"", 1, 1, true}), 5);
  const c::QuantScheme s = c::scheme_from_config(
      R"({"compression_training": {"weight_quantization": {"shared_parameters": {"enabled": true},
         "different_groups": {"all": {"params": {"target_bits": 8}, "modules": ["*", "embedding", "lm_head"]}}}}})",
      "all.json");
  const io::GptWeights q = c::quantize_model(fp, s);
  for (int64_t l = 0; l < 2; ++l) {
    const std::string h = str("h.", l, ".");
    for (const char* m : {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj", "moe.experts.c_fc", "moe.experts.c_proj"})
      EXPECT_TRUE(q.quantized.count(h + m + ".weight")) << h << m;
    for (const char* t : {"moe.gate.weight", "moe.coefficient.weight", "moe.coefficient.bias", "moe.experts.c_fc.bias",
                          "moe.experts.c_proj.bias", "ln_2.weight"}) {
      EXPECT_FALSE(q.quantized.count(h + t)) << h << t;
      EXPECT_EQ(q.tensors.at(h + t).dtype(), DType::f32) << h << t;
    }
  }
  EXPECT_EQ(q.quantized.at("h.0.moe.experts.c_fc.weight").rows, kE * 4 * kC);
  EXPECT_EQ(q.quantized.at("h.0.moe.experts.c_proj.weight").rows, kE * kC);
  EXPECT_EQ(q.quantized.at("h.0.moe.experts.c_proj.weight").in, 4 * kC);
}

// ---- The engine against the reference ----

class MoeQuantEngine : public ::testing::TestWithParam<Variant> {};

TEST_P(MoeQuantEngine, TheReferenceMatchesTheFloatEngine) {
  // The reference itself, on the float model: the engine's f32 path was tested against training.
  const io::GptWeights fp = random_weights(moe_config(GetParam()), 11);
  const auto ids = random_ids(40, kVocab, 2);
  Reference ref{fp, fp};
  const auto want = ref.logits(ids);
  infer::Engine e(fp, {});
  std::vector<float> got(ids.size() * kVocab);
  e.forward_all({0, ids}, got.data());
  EXPECT_LT(max_rel_error(got, want), 1e-4);
}

TEST_P(MoeQuantEngine, EngineMatchesTheDequantizedReferenceForEveryScheme) {
  const Variant v = GetParam();
  const io::GptWeights fp = random_weights(moe_config(v), 1);
  const auto ids = random_ids(40, kVocab, 3);  // prefill above the decode kernels' row count
  infer::Engine ef(fp, {});
  std::vector<float> fl(ids.size() * kVocab);
  ef.forward_all({0, ids}, fl.data());
  for (const std::string& scheme : kSchemes)
    for (bool sym : {true, false}) {
      const std::string what = str(v.name, " ", scheme, sym ? " sym" : " asym");
      const io::GptWeights q = c::quantize_model(fp, c::scheme_preset(scheme, options(64, sym)));
      const bool a8 = scheme.ends_with("a8");
      for (int64_t l = 0; l < 2; ++l) {
        if (fp.config.moe.experts_at(l, 2) == 0) continue;
        for (const char* m : {"c_fc", "c_proj"}) {
          const std::string name = str("h.", l, ".moe.experts.", m, ".weight");
          ASSERT_TRUE(q.quantized.count(name)) << what << " " << name;
          EXPECT_EQ(q.quantized.at(name).bits, scheme[1] - '0') << what;
          EXPECT_EQ(q.activation(name).quantized, a8) << what;
        }
        EXPECT_TRUE(q.tensors.count(str("h.", l, ".moe.gate.weight"))) << what;
      }
      const io::GptWeights f = dequantized(q);
      // dense() (the [E, out, in] view of a quantized expert tensor) agrees with the slices.
      for (const auto& [name, shape] : io::gpt_weight_shapes(q.config)) {
        const Tensor d = q.dense(name, shape);
        ASSERT_EQ(d.shape(), shape) << name;
        EXPECT_EQ(std::memcmp(d.f32(), f.tensors.at(name).f32(), d.nbytes()), 0) << name;
      }
      Reference ref{f, q};
      const auto want = ref.logits(ids);
      // Routing decided by clear margins, so rounding differences cannot flip a token's experts;
      // every expert gets tokens.
      EXPECT_GT(ref.min_margin, 1e-5) << what;
      for (int64_t x = 0; x < kE; ++x) EXPECT_GT(ref.usage[x], 0) << what << " expert " << x;
      infer::Engine e(q, {});
      std::vector<float> got(ids.size() * kVocab);
      e.forward_all({0, ids}, got.data());
      // Prefill (integer GEMM path), as quantized_model_test: integer sums are exact, the rest is
      // f32 rounding, which can move an activation across a rounding boundary now and then.
      EXPECT_LT(max_rel_error(got, want), 2e-3) << what;
      EXPECT_LT(median_rel_error(got, want), 1e-6) << what;
      // Near the float model (int4 further than int8).
      EXPECT_LT(max_rel_error(got, fl), scheme[1] == '8' ? 0.06 : 0.3) << what;
      // Decode, one token at a time after a prefix (the skinny row counts).
      const auto rows = prefill_then_decode(e, ids, 30, kVocab);
      for (int64_t i = 30; i < 40; ++i) {
        std::vector<float> r(want.begin() + i * kVocab, want.begin() + (i + 1) * kVocab);
        EXPECT_LT(max_rel_error(rows[i - 30 + 1], r), 2e-3) << what << " decode " << i;
      }
    }
}

TEST_P(MoeQuantEngine, BatchedDecodeEqualsSingleDecodeBitwise) {
  const io::GptWeights q = c::quantize_model(random_weights(moe_config(GetParam()), 4),
                                             c::scheme_preset("w4a8", options(32, false)));
  expect_batched_step_equals_single_runs_bitwise(q, kVocab);
}

TEST_P(MoeQuantEngine, CountsQuantizedExpertsAndTakesBf16Weights) {
  const io::GptWeights fp = random_weights(moe_config(GetParam()), 6);
  infer::Engine ef(fp, {}), e8(c::quantize_model(fp, c::scheme_preset("w8a16", options())), {}),
      e4(c::quantize_model(fp, c::scheme_preset("w4a16", options())), {});
  EXPECT_LT(e8.weight_bytes_per_step(), ef.weight_bytes_per_step() / 2);
  EXPECT_LT(e4.weight_bytes_per_step(), e8.weight_bytes_per_step());
  // --weights bf16 with a quantized model: the float matrices left (PR-MoE's coefficient) in bf16,
  // the router still f32, the experts as quantized.
  const io::GptWeights q = c::quantize_model(fp, c::scheme_preset("w8a8", options()));
  infer::EngineOptions o;
  o.weights = infer::WeightFormat::bf16;
  infer::Engine a(q, {}), b(q, o);
  const auto ids = random_ids(12, kVocab, 7);
  std::vector<float> la(12 * kVocab), lb(12 * kVocab);
  a.forward_all({0, ids}, la.data());
  b.forward_all({0, ids}, lb.data());
  EXPECT_LT(max_rel_error(lb, la), GetParam().residual ? 1e-2 : 1e-6);
}

INSTANTIATE_TEST_SUITE_P(Variants, MoeQuantEngine, ::testing::ValuesIn(kVariants),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- Files ----

class MoeQuantFile : public TempDirTest {
 protected:
  struct CliRun {
    int rc;
    std::string out, err;
  };
  CliRun run_gannet(const std::string& args) {
    const std::string out = file("stdout.txt"), err = file("stderr.txt");
    const std::string cmd = std::string(GANNET_BINARY) + " " + args + " >" + out + " 2>" + err;
    const int rc = std::system(cmd.c_str());
    return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, read_text(out), read_text(err)};
  }
  // A one-line error on stderr containing `part`, exit status 1.
  void one_line_error(const CliRun& r, const std::string& part) {
    EXPECT_EQ(r.rc, 1) << r.out << r.err;
    EXPECT_TRUE(has(r.err, part)) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
};

TEST_F(MoeQuantFile, RoundTripSizesAndValidation) {
  const io::GptWeights fp = random_weights(moe_config({"k2", 2, 1, false}), 8);
  io::write_gpt_weights(file("f32.safetensors"), fp);
  const auto f32_bytes = std::filesystem::file_size(file("f32.safetensors"));
  const int64_t fc_f32 = kE * 4 * kC * kC * 4, proj_f32 = kE * kC * 4 * kC * 4;
  const auto ids = random_ids(12, kVocab, 4);
  for (const std::string& scheme : kSchemes) {
    const io::GptWeights q = c::quantize_model(fp, c::scheme_preset(scheme, options(32)));
    const std::string path = file(scheme + ".safetensors");
    io::write_gpt_weights(path, q);
    const io::GptWeights r = io::read_gpt_weights(path);  // validates every shape against the config
    EXPECT_EQ(r.scheme, scheme);
    ASSERT_EQ(r.quantized.size(), q.quantized.size());
    const int bits = scheme[1] - '0';
    for (int64_t l = 0; l < 2; ++l) {
      const io::QuantizedTensor& fc = r.quantized.at(str("h.", l, ".moe.experts.c_fc.weight"));
      const io::QuantizedTensor& pr = r.quantized.at(str("h.", l, ".moe.experts.c_proj.weight"));
      EXPECT_EQ(fc.q.shape(), (Shape{kE * 4 * kC, bits == 8 ? kC : kC / 2}));
      EXPECT_EQ(fc.scale.shape(), (Shape{kE * 4 * kC, 1}));
      EXPECT_EQ(pr.q.shape(), (Shape{kE * kC, bits == 8 ? 4 * kC : 2 * kC}));
      // int8: a quarter of f32 plus one scale per 32 weights; int4: an eighth plus the scales.
      EXPECT_EQ(fc.nbytes(), fc_f32 / (bits == 8 ? 4 : 8) + kE * 4 * kC * 4);
      EXPECT_EQ(pr.nbytes(), proj_f32 / (bits == 8 ? 4 : 8) + kE * kC * 4 * 4);
      EXPECT_TRUE(r.tensors.count(str("h.", l, ".moe.gate.weight")));
    }
    for (const auto& [name, t] : q.quantized) {
      const io::QuantizedTensor& u = r.quantized.at(name);
      ASSERT_EQ(u.q.nbytes(), t.q.nbytes()) << name;
      EXPECT_EQ(std::memcmp(u.q.raw(), t.q.raw(), t.q.nbytes()), 0) << name;
      EXPECT_EQ(std::memcmp(u.scale.raw(), t.scale.raw(), t.scale.nbytes()), 0) << name;
      EXPECT_TRUE(r.activation(name) == q.activation(name)) << name;
    }
    const auto bytes = std::filesystem::file_size(path);
    EXPECT_LT((double)bytes, (bits == 8 ? 0.35 : 0.23) * (double)f32_bytes) << scheme;
    std::printf("[ sizes    ] %s: %zu bytes, %.3fx the f32 file (%zu bytes)\n", scheme.c_str(), (size_t)bytes,
                (double)bytes / (double)f32_bytes, (size_t)f32_bytes);
    infer::Engine a(q, {}), b(r, {});
    std::vector<float> la(12 * kVocab), lb(12 * kVocab);
    a.forward_all({0, ids}, la.data());
    b.forward_all({0, ids}, lb.data());
    EXPECT_EQ(la, lb) << scheme;
    // load_gpt_weights: the training model gets the dequantized experts in its [E, out, in] form.
    models::Gpt m(r.config);
    io::load_gpt_weights(r, m);
  }
}

TEST_F(MoeQuantFile, ExpertShapesAreCheckedAgainstTheConfig) {
  const io::GptWeights q = c::quantize_model(random_weights(moe_config({"k1", 1, 2, false}), 9),
                                             c::scheme_preset("w4a8", options(32, false)));
  const std::string fc = "h.1.moe.experts.c_fc.weight";
  // find_quantized takes the stored [E * out, in] and the model's [E, out, in], nothing else.
  EXPECT_NE(q.find_quantized(fc, {kE * 4 * kC, kC}), nullptr);
  EXPECT_NE(q.find_quantized(fc, {kE, 4 * kC, kC}), nullptr);
  EXPECT_TRUE(has(message_of([&] { q.find_quantized(fc, {kE, kC, 4 * kC}); }), fc));
  EXPECT_THROW(q.find_quantized(fc, {4 * kC, kC}), Error);
  EXPECT_THROW(q.find_quantized(fc, {kE + 1, 4 * kC, kC}), Error);

  io::write_gpt_weights(file("good.safetensors"), q);
  const io::SafeTensors good = io::SafeTensors::open(file("good.safetensors"));
  auto rewrite = [&](const std::string& name, auto change_tensors, auto change_meta) {
    return rewrite_safetensors(good, file(name), change_tensors, change_meta);
  };
  auto keep = [](auto&) {};
  // One expert's rows where all E experts' are expected.
  std::string p = rewrite("rows.safetensors", [&](auto& ts) {
    for (auto& e : ts)
      if (e.first == fc + ".q") e.second = Tensor::zeros({4 * kC, kC / 2}, DType::u8);
  }, keep);
  EXPECT_TRUE(has(message_of([&] { io::read_gpt_weights(p); }), fc));
  // Stored in the model's 3-D shape instead of [E * out, in].
  p = rewrite("3d.safetensors", [&](auto& ts) {
    for (auto& e : ts)
      if (e.first == fc + ".q") e.second = e.second.clone().view({kE, 4 * kC, kC / 2});
  }, keep);
  EXPECT_TRUE(has(message_of([&] { io::read_gpt_weights(p); }), fc));
  // Scales missing rows.
  p = rewrite("scales.safetensors", [&](auto& ts) {
    for (auto& e : ts)
      if (e.first == fc + ".scale") e.second = Tensor::zeros({4 * kC, 1});
  }, keep);
  EXPECT_TRUE(has(message_of([&] { io::read_gpt_weights(p); }), fc));
  // Metadata with the wrong input width.
  p = rewrite("in.safetensors", keep, [&](auto& meta) {
    auto j = nlohmann::json::parse(meta["quantization"]);
    j["weights"][fc]["in"] = 4 * kC;
    meta["quantization"] = j.dump();
  });
  EXPECT_TRUE(has(message_of([&] { io::read_gpt_weights(p); }), fc));
  // A quantized router or bias is not a thing this format holds.
  for (const std::string& name : {std::string("h.1.moe.gate.weight"), std::string("h.1.moe.experts.c_fc.bias")}) {
    p = rewrite("gate.safetensors", keep, [&](auto& meta) {
      auto j = nlohmann::json::parse(meta["quantization"]);
      j["weights"][name] = j["weights"][fc];
      meta["quantization"] = j.dump();
    });
    EXPECT_TRUE(has(message_of([&] { io::read_gpt_weights(p); }), name));
  }
}

// ---- LKD and static activation scales: refused ----

TEST(MoeQuantRules, LkdAndStaticScalesAreRefusedPlainRoundingIsNot) {
  const io::GptWeights fp = random_weights(moe_config({"k1", 1, 2, false}), 10);
  const c::QuantScheme s = c::scheme_preset("w4a16", options());
  Tensor batch = Tensor::empty({2, 8}, DType::i32);
  for (int64_t i = 0; i < 16; ++i) batch.data<int32_t>()[i] = (int32_t)(i * 3 % kVocab);
  c::LkdOptions o;
  o.steps = 2;
  const std::string lkd = message_of([&] { c::quantize_with_lkd(fp, s, {batch}, o); });
  EXPECT_TRUE(has(lkd, "LKD")) << lkd;
  EXPECT_TRUE(has(lkd, "does not support Mixture-of-Experts blocks yet")) << lkd;
  EXPECT_TRUE(has(lkd, "plain round-to-nearest")) << lkd;
  EXPECT_EQ(lkd.find('\n'), std::string::npos) << lkd;
  c::SchemeOptions so = options();
  so.static_activations = true;
  const c::QuantScheme st = c::scheme_preset("w8a8", so);
  const std::string stat = message_of([&] { c::quantize_with_lkd(fp, st, {batch}, {}); });
  EXPECT_TRUE(has(stat, "static activation scales")) << stat;
  EXPECT_EQ(stat.find('\n'), std::string::npos) << stat;
  EXPECT_THROW(c::quantize_model(fp, st), Error);
  EXPECT_THROW(c::check_quantizable(fp.config, true), Error);
  // Plain rounding, through LKD's entry with no steps too.
  EXPECT_NO_THROW(c::check_quantizable(fp.config));
  const c::QuantizeResult r = c::quantize_with_lkd(fp, s, {}, {});
  EXPECT_TRUE(r.model.quantized.count("h.1.moe.experts.c_fc.weight"));
  // A dense model keeps everything.
  EXPECT_NO_THROW(c::check_quantizable(models::GptConfig{}, true, true));
}

TEST_F(MoeQuantFile, QuantizeCommandEndToEnd) {
  const models::Gpt m = random_model(moe_config({"k2", 2, 1, true}), 12);
  io::save_checkpoint(file("moe.safetensors"), m, nullptr, io::TrainState{});
  CliRun r = run_gannet("quantize -i " + file("moe.safetensors") + " -o " + file("q.safetensors") +
                        " --scheme w4a8 --group 32 --no-progress --threads 1");
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "wrote " + file("q.safetensors"))) << r.out;
  const io::GptWeights q = io::read_gpt_weights(file("q.safetensors"));
  EXPECT_EQ(q.scheme, "w4a8");
  for (int64_t l = 0; l < 2; ++l) {
    EXPECT_EQ(q.quantized.at(str("h.", l, ".moe.experts.c_fc.weight")).bits, 4);
    EXPECT_TRUE(q.activation(str("h.", l, ".moe.experts.c_proj.weight")).quantized);
    EXPECT_EQ(q.quantized.at(str("h.", l, ".mlp.c_fc.weight")).bits, 4);
    EXPECT_TRUE(q.tensors.count(str("h.", l, ".moe.gate.weight")));
    EXPECT_TRUE(q.tensors.count(str("h.", l, ".moe.coefficient.weight")));
  }
  EXPECT_LT(std::filesystem::file_size(file("q.safetensors")), std::filesystem::file_size(file("moe.safetensors")) / 4);
  // The command's file runs on the engine like the library's.
  const io::GptWeights fp = io::read_gpt_weights(file("moe.safetensors"));
  const io::GptWeights lib = c::quantize_model(fp, c::scheme_preset("w4a8", options(32)));
  const auto ids = random_ids(10, kVocab, 5);
  infer::Engine a(q, {}), b(lib, {});
  std::vector<float> la(10 * kVocab), lb(10 * kVocab);
  a.forward_all({0, ids}, la.data());
  b.forward_all({0, ids}, lb.data());
  EXPECT_EQ(la, lb);

  // A config file whose "mlp" group covers the experts.
  write(file("q.json"), R"({"compression_training": {"weight_quantization": {
      "shared_parameters": {"enabled": true, "group_size": 32},
      "different_groups": {"a": {"params": {"start_bits": 8, "target_bits": 8}, "modules": ["attn"]},
                           "m": {"params": {"start_bits": 4, "target_bits": 4}, "modules": ["mlp"]}}}}})");
  r = run_gannet("quantize -i " + file("moe.safetensors") + " -o " + file("c.safetensors") + " --config " +
                 file("q.json") + " --no-progress --threads 1");
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  const io::GptWeights cq = io::read_gpt_weights(file("c.safetensors"));
  EXPECT_EQ(cq.quantized.at("h.0.moe.experts.c_proj.weight").bits, 4);
  EXPECT_EQ(cq.quantized.at("h.0.attn.c_attn.weight").bits, 8);
  EXPECT_FALSE(cq.activation("h.0.moe.experts.c_proj.weight").quantized);

  // LKD (on a token file or data-free) and static activation scales: one-line errors.
  std::vector<int32_t> toks = random_ids(400, kVocab, 6);
  data::write_token_file(file("calib.tok"), toks, (int)kVocab);
  const std::string base = "quantize -i " + file("moe.safetensors") + " -o " + file("l.safetensors") + " --no-progress ";
  one_line_error(run_gannet(base + "--scheme w4a16 --lkd-steps 2 --calib " + file("calib.tok") +
                            " --calib-batches 1 --calib-batch 2 --calib-seq-len 16"),
                 "LKD (--lkd-steps, --data-free) does not support Mixture-of-Experts blocks yet");
  one_line_error(run_gannet(base + "--scheme w4a16 --lkd-steps 2 --data-free"), "does not support Mixture-of-Experts");
  one_line_error(run_gannet(base + "--scheme w8a8 --static-activations --calib " + file("calib.tok")),
                 "static activation scales");
  EXPECT_FALSE(std::filesystem::exists(file("l.safetensors")));
}
