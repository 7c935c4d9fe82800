// The config-file form of quantization schemes (DeepSpeed's compression_training keys).
#include "gannet/compress/quant_config.h"

#include <gtest/gtest.h>

#include <cstring>

#include "gannet/models/gpt.h"
#include "test_files.h"

using namespace gannet;
using namespace gannet::testing;
namespace c = gannet::compress;

namespace {
const char* kMixed = R"({"compression_training": {
  "weight_quantization": {
    "shared_parameters": {"enabled": true, "quantization_type": "asymmetric", "rounding": "nearest",
                          "group_size": 32, "schedule_offset": 0, "quantizer_kernel": true},
    "different_groups": {
      "wq1": {"params": {"start_bits": 8, "target_bits": 8}, "modules": ["attn"]},
      "wq2": {"params": {"start_bits": 4, "target_bits": 4}, "modules": ["mlp", "embedding", "lm_head"]}}},
  "activation_quantization": {
    "shared_parameters": {"enabled": true, "quantization_type": "symmetric", "range_calibration": "dynamic"},
    "different_groups": {"aq1": {"params": {"bits": 8}, "modules": ["attn", "mlp"]}}}}})";

io::GptWeights random_weights() {
  models::GptConfig cfg;
  cfg.vocab_size = 40;
  cfg.n_ctx = 16;
  cfg.n_layer = 2;
  cfg.n_head = 2;
  cfg.n_embd = 32;
  models::Gpt m(cfg);
  m.init(3);
  io::GptWeights w;
  w.config = cfg;
  for (const auto& p : m.parameters()) w.tensors[p.name] = p.var.value().clone();
  return w;
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}
}  // namespace

TEST(QuantConfig, TheMixedRecipeAsAConfigEqualsThePreset) {
  const c::QuantScheme fromfile = c::scheme_from_config(kMixed, "mixed.json");
  c::SchemeOptions o;
  o.group = 32;
  o.symmetric = false;
  const c::QuantScheme preset = c::scheme_preset("mixed", o);
  const io::GptWeights w = random_weights();
  const io::GptWeights a = c::quantize_model(w, fromfile), b = c::quantize_model(w, preset);
  ASSERT_EQ(a.quantized.size(), b.quantized.size());
  for (const auto& [name, t] : b.quantized) {
    const io::QuantizedTensor& u = a.quantized.at(name);
    EXPECT_EQ(u.bits, t.bits) << name;
    EXPECT_EQ(u.group, t.group) << name;
    EXPECT_EQ(u.symmetric(), t.symmetric()) << name;
    EXPECT_EQ(std::memcmp(u.q.raw(), t.q.raw(), t.q.nbytes()), 0) << name;
    EXPECT_TRUE(a.activation(name) == b.activation(name)) << name;
  }
}

TEST(QuantConfig, ModulesSelectProductsAndTheRestStaysFloat) {
  const std::string text = replaced(replaced(kMixed, R"(["attn"])", R"(["c_fc"])"), R"(["mlp", "embedding", "lm_head"])",
                                    R"(["h.1.attn.c_proj"])");
  const c::QuantScheme s = c::scheme_from_config(replaced(text, R"(["attn", "mlp"])", R"(["c_fc"])"), "x.json");
  const io::GptWeights q = c::quantize_model(random_weights(), s);
  EXPECT_EQ(q.quantized.size(), 3u);  // c_fc of both layers, one c_proj
  EXPECT_EQ(q.quantized.at("h.0.mlp.c_fc.weight").bits, 8);
  EXPECT_EQ(q.quantized.at("h.1.attn.c_proj.weight").bits, 4);
  EXPECT_TRUE(q.activation("h.0.mlp.c_fc.weight").quantized);
  EXPECT_FALSE(q.activation("h.1.attn.c_proj.weight").quantized);
  EXPECT_TRUE(q.tensors.count("h.0.attn.c_attn.weight"));
  EXPECT_TRUE(q.tensors.count("wte.weight"));
  // int8 inputs for a product whose weight stays f32.
  const c::QuantScheme bad = c::scheme_from_config(replaced(text, R"(["attn", "mlp"])", R"(["c_attn"])"), "x.json");
  EXPECT_TRUE(has(message_of([&] { c::quantize_model(random_weights(), bad); }), "c_attn"));
}

TEST(QuantConfig, TrainingOnlyAndUnknownKeysAreErrors) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {replaced(kMixed, R"("group_size": 32)", R"("quantize_groups": 48)"), "group_size"},
      {replaced(kMixed, R"("start_bits": 8, "target_bits": 8)", R"("start_bits": 16, "target_bits": 8)"), "start_bits"},
      {replaced(kMixed, R"("schedule_offset": 0)", R"("schedule_offset": 100)"), "schedule_offset"},
      {replaced(kMixed, R"("rounding": "nearest")", R"("roundin": "nearest")"), "roundin"},
      {replaced(kMixed, R"("target_bits": 4})", R"("target_bits": 2})"), "target_bits"},
      {replaced(kMixed, R"("quantization_type": "symmetric")", R"("quantization_type": "asymmetric")"),
       "asymmetric activations are int4 only"},
      {replaced(kMixed, R"("range_calibration": "dynamic")", R"("range_calibration": "minmax")"), "range_calibration"},
      {replaced(kMixed, R"("bits": 8)", R"("bits": 5)"), "bits 5 is not supported (8 or 4)"},
      {replaced(kMixed, R"(["mlp", "embedding", "lm_head"])", R"(["mlp", "embedding"])"), "lm_head"},
      {replaced(kMixed, R"("enabled": true, "quantization_type": "asym)", R"("enabled": false, "quantization_type": "asym)"), "enabled"},
      {"{\"compression_training\": {}}", "weight_quantization"},
      {"{not json", "x.json"},
  };
  for (const auto& [text, word] : cases) {
    const std::string msg = message_of([&text = text] { c::scheme_from_config(text, "x.json"); });
    EXPECT_TRUE(has(msg, word)) << word << ": " << msg;
  }
}
