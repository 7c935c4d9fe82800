// Hugging Face GPT-2 import (io/hf_gpt2.h): tiny HF-style checkpoints written from a random gannet
// GPT (Conv1D weights [in, out], mask buffers, optional "transformer." prefix and lm_head), read
// back and compared tensor by tensor and logit by logit.
#include "gannet/io/hf_gpt2.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "gannet/io/safetensors.h"
#include "test_files.h"

using namespace gannet;
using namespace gannet::testing;
using namespace gannet::io;
namespace fs = std::filesystem;

namespace {

class HfGpt2Test : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    model_.init(11);
  }
  std::string dir() const { return dir_.string(); }

  static models::GptConfig tiny() {
    models::GptConfig c;
    c.vocab_size = 37;
    c.n_ctx = 12;
    c.n_layer = 2;
    c.n_head = 2;
    c.n_embd = 8;
    c.layernorm_eps = 1e-5f;
    return c;
  }

  models::Gpt model_{tiny()};
};

bool is_conv1d(const std::string& name) {
  return name.ends_with("c_attn.weight") || name.ends_with("c_proj.weight") || name.ends_with("c_fc.weight");
}

Tensor transposed(const Tensor& t) {
  Tensor out = Tensor::empty({t.dim(1), t.dim(0)});
  for (int64_t r = 0; r < t.dim(0); ++r)
    for (int64_t c = 0; c < t.dim(1); ++c) out.f32()[c * t.dim(0) + r] = t.f32()[r * t.dim(1) + c];
  return out;
}

Tensor converted(const Tensor& t, DType dtype) {
  if (dtype == DType::f32) return t;
  Tensor out = Tensor::empty(t.shape(), dtype);
  auto* o = static_cast<uint16_t*>(out.raw());
  for (int64_t i = 0; i < t.numel(); ++i) o[i] = dtype == DType::f16 ? f32_to_f16(t.f32()[i]) : f32_to_bf16(t.f32()[i]);
  return out;
}

// What the importer should produce for a weight stored in `dtype`.
float rounded(float x, DType dtype) {
  if (dtype == DType::f16) return f16_to_f32(f32_to_f16(x));
  if (dtype == DType::bf16) return bf16_to_f32(f32_to_bf16(x));
  return x;
}

struct HfOptions {
  std::string prefix = "transformer.";
  DType dtype = DType::f32;
  bool lm_head = false;
  bool mask_buffers = true;
  std::string skip;                         // a weight to leave out
  std::string untransposed;                 // a Conv1D weight to store in gannet's [out, in] layout
  std::vector<std::pair<std::string, Tensor>> extra;  // more tensors
};

// Writes model.safetensors as transformers' GPT2LMHeadModel.save_pretrained does.
void write_hf_model(const std::string& path, const models::Gpt& model, const HfOptions& o) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  const auto& c = model.config();
  for (const auto& p : model.parameters()) {
    if (p.name == o.skip) continue;
    Tensor t = p.var.value();
    if (is_conv1d(p.name) && p.name != o.untransposed) t = transposed(t);
    tensors.emplace_back(o.prefix + p.name, converted(t, o.dtype));
    if (o.mask_buffers && p.name.ends_with("attn.c_attn.weight")) {
      const std::string layer = p.name.substr(0, p.name.size() - std::string("c_attn.weight").size());
      Tensor mask = Tensor::zeros({1, 1, c.n_ctx, c.n_ctx});
      for (int64_t i = 0; i < c.n_ctx; ++i)
        for (int64_t j = 0; j <= i; ++j) mask.f32()[i * c.n_ctx + j] = 1.f;
      tensors.emplace_back(o.prefix + layer + "bias", converted(mask, o.dtype));
      tensors.emplace_back(o.prefix + layer + "masked_bias", converted(Tensor::full({}, -1e4f), o.dtype));
    }
  }
  if (o.lm_head) tensors.emplace_back("lm_head.weight", converted(model.parameters()[0].var.value(), o.dtype));
  for (const auto& e : o.extra) tensors.push_back(e);
  save_safetensors(path, tensors, {{"format", "pt"}});
}

nlohmann::json hf_config(const models::GptConfig& c) {
  return {{"architectures", {"GPT2LMHeadModel"}},
          {"model_type", "gpt2"},
          {"activation_function", "gelu_new"},
          {"attn_pdrop", 0.1},
          {"bos_token_id", 50256},
          {"embd_pdrop", 0.1},
          {"eos_token_id", 50256},
          {"initializer_range", 0.02},
          {"layer_norm_epsilon", 1e-05},
          {"n_ctx", c.n_ctx},
          {"n_embd", c.n_embd},
          {"n_head", c.n_head},
          {"n_inner", nullptr},
          {"n_layer", c.n_layer},
          {"n_positions", c.n_ctx},
          {"reorder_and_upcast_attn", false},
          {"resid_pdrop", 0.1},
          {"scale_attn_by_inverse_layer_idx", false},
          {"scale_attn_weights", true},
          {"summary_type", "cls_index"},
          {"task_specific_params", {{"text-generation", {{"do_sample", true}, {"max_length", 50}}}}},
          {"torch_dtype", "float32"},
          {"transformers_version", "4.40.0"},
          {"use_cache", true},
          {"vocab_size", c.vocab_size}};
}

Tensor logits_of(const models::Gpt& model) {
  Tensor tokens = Tensor::empty({2, 7}, DType::i32);
  for (int i = 0; i < 14; ++i) tokens.data<int32_t>()[i] = (i * 11 + 3) % (int)model.config().vocab_size;
  return model.logits(tokens).value();
}

void expect_same_values(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  ASSERT_EQ(a.dtype(), DType::f32) << what;
  ASSERT_EQ(b.dtype(), DType::f32) << what;
  for (int64_t i = 0; i < a.numel(); ++i) ASSERT_EQ(a.f32()[i], b.f32()[i]) << what << " element " << i;
}

}  // namespace

TEST_F(HfGpt2Test, ImportsPrefixedCheckpoint) {
  write(file("config.json"), hf_config(tiny()).dump(2));
  write_hf_model(file("model.safetensors"), model_, {});
  EXPECT_TRUE(is_hf_gpt2_dir(dir()));
  EXPECT_FALSE(is_hf_gpt2_dir(file("config.json")));

  GptWeights w = import_hf_gpt2(dir());
  EXPECT_EQ(w.config, tiny());
  EXPECT_EQ(w.tensors.size(), model_.parameters().size());
  for (const auto& p : model_.parameters()) expect_same_values(w.at(p.name, p.var.shape()), p.var.value(), p.name);

  // The same through read_gpt_weights, and into a model: the same logits.
  GptWeights again = read_gpt_weights(dir());
  models::Gpt loaded(tiny());
  load_gpt_weights(again, loaded);
  expect_same_values(logits_of(loaded), logits_of(model_), "logits");
}

TEST_F(HfGpt2Test, ImportsUnprefixedWithTiedLmHead) {
  write(file("config.json"), hf_config(tiny()).dump());
  HfOptions o;
  o.prefix = "";
  o.lm_head = true;
  o.mask_buffers = false;
  write_hf_model(file("model.safetensors"), model_, o);
  GptWeights w = import_hf_gpt2(dir());
  for (const auto& p : model_.parameters()) expect_same_values(w.at(p.name, p.var.shape()), p.var.value(), p.name);

  // An lm_head that is not the embedding cannot be tied.
  Tensor other = model_.parameters()[0].var.value().clone();
  other.f32()[5] += 1.f;
  o.lm_head = false;
  o.extra = {{"lm_head.weight", other}};
  write_hf_model(file("model.safetensors"), model_, o);
  EXPECT_TRUE(has(message_of([&] { import_hf_gpt2(dir()); }), "lm_head.weight differs from wte.weight"));

  // One of another shape is named as such, not as a different value.
  o.extra = {{"lm_head.weight", Tensor::zeros({36, 8})}};
  write_hf_model(file("model.safetensors"), model_, o);
  EXPECT_EQ(message_of([&] { import_hf_gpt2(dir()); }),
            file("model.safetensors") + ": tensor 'lm_head.weight' has shape [36, 8], expected [37, 8] (the shape of "
            "wte.weight, for config.json's vocab_size 37 and n_embd 8)");
}

TEST_F(HfGpt2Test, ImportsHalfPrecisionFiles) {
  write(file("config.json"), hf_config(tiny()).dump());
  for (DType dtype : {DType::f16, DType::bf16}) {
    HfOptions o;
    o.dtype = dtype;
    o.lm_head = true;
    write_hf_model(file("model.safetensors"), model_, o);
    GptWeights w = import_hf_gpt2(dir());
    for (const auto& p : model_.parameters()) {
      const Tensor& t = w.at(p.name, p.var.shape());
      ASSERT_EQ(t.dtype(), DType::f32);
      const Tensor& orig = p.var.value();
      for (int64_t i = 0; i < t.numel(); ++i)
        ASSERT_EQ(t.f32()[i], rounded(orig.f32()[i], dtype)) << dtype_name(dtype) << " " << p.name << " " << i;
    }
  }
}

TEST_F(HfGpt2Test, ConfigDefaultsAndAliases) {
  // Absent keys take GPT2Config's defaults; n_ctx stands in for n_positions in old files.
  nlohmann::json j = hf_config(tiny());
  j.erase("n_positions");
  j.erase("layer_norm_epsilon");
  j.erase("activation_function");
  j.erase("model_type");
  j["activation_function"] = "gelu_pytorch_tanh";
  j["reorder_and_upcast_attn"] = true;  // changes only the precision of a step HF computes
  write(file("config.json"), j.dump());
  write_hf_model(file("model.safetensors"), model_, {});
  GptWeights w = import_hf_gpt2(dir());
  EXPECT_EQ(w.config, tiny());
}

TEST_F(HfGpt2Test, BadTensorsNameTheFileAndTensor) {
  write(file("config.json"), hf_config(tiny()).dump());
  auto import_with = [&](const HfOptions& o) {
    write_hf_model(file("model.safetensors"), model_, o);
    return message_of([&] { import_hf_gpt2(dir()); });
  };
  HfOptions o;
  o.skip = "h.1.mlp.c_fc.bias";
  std::string msg = import_with(o);
  EXPECT_TRUE(has(msg, "model.safetensors") && has(msg, "'h.1.mlp.c_fc.bias'") && has(msg, "missing")) << msg;

  o = {};
  o.untransposed = "h.0.mlp.c_fc.weight";
  msg = import_with(o);
  EXPECT_TRUE(has(msg, "'transformer.h.0.mlp.c_fc.weight' has shape [32, 8], expected [8, 32]") && has(msg, "Conv1D"))
      << msg;

  o = {};
  o.extra = {{"transformer.h.2.ln_1.weight", Tensor::zeros({8})}};
  msg = import_with(o);
  EXPECT_TRUE(has(msg, "unknown tensor 'transformer.h.2.ln_1.weight'")) << msg;

  o = {};
  o.extra = {{"h.0.ln_1.weight", Tensor::zeros({8})}};
  msg = import_with(o);
  EXPECT_TRUE(has(msg, "stored twice")) << msg;

  o = {};
  o.extra = {{"transformer.wte.weight.x", Tensor::zeros({8})}};
  EXPECT_TRUE(has(import_with(o), "unknown tensor"));

  // A vocab_size that does not match the embedding.
  nlohmann::json j = hf_config(tiny());
  j["vocab_size"] = 50257;
  write(file("config.json"), j.dump());
  msg = import_with({});
  EXPECT_TRUE(has(msg, "'transformer.wte.weight' has shape [37, 8], expected [50257, 8]")) << msg;
}

TEST_F(HfGpt2Test, UnsupportedConfigsAreRejected) {
  write_hf_model(file("model.safetensors"), model_, {});
  auto import_with = [&](const std::string& key, const nlohmann::json& value) {
    nlohmann::json j = hf_config(tiny());
    j[key] = value;
    write(file("config.json"), j.dump());
    return message_of([&] { import_hf_gpt2(dir()); });
  };
  std::string msg = import_with("activation_function", "relu");
  EXPECT_TRUE(has(msg, "config.json") && has(msg, "activation_function 'relu' is not supported")) << msg;
  EXPECT_TRUE(has(import_with("scale_attn_by_inverse_layer_idx", true), "scale_attn_by_inverse_layer_idx"));
  EXPECT_TRUE(has(import_with("scale_attn_weights", false), "scale_attn_weights"));
  EXPECT_TRUE(has(import_with("n_inner", 64), "n_inner 64"));
  EXPECT_TRUE(has(import_with("add_cross_attention", true), "add_cross_attention"));
  EXPECT_TRUE(has(import_with("tie_word_embeddings", false), "tie_word_embeddings"));
  EXPECT_TRUE(has(import_with("model_type", "gpt_neo"), "model_type 'gpt_neo' is not GPT-2"));
  EXPECT_TRUE(has(import_with("n_head", 3), "not divisible"));
  msg = import_with("n_embd", "eight");
  EXPECT_TRUE(has(msg, "config.json") && has(msg, "n_embd")) << msg;
  write(file("config.json"), "{\"n_embd\": ");
  EXPECT_TRUE(has(message_of([&] { import_hf_gpt2(dir()); }), "config.json"));
}

TEST_F(HfGpt2Test, MissingFilesAreNamed) {
  EXPECT_TRUE(has(message_of([&] { import_hf_gpt2(dir()); }), "no config.json"));
  EXPECT_TRUE(has(message_of([&] { import_hf_gpt2(file("nope")); }), "not a directory"));
  write(file("config.json"), hf_config(tiny()).dump());
  EXPECT_FALSE(is_hf_gpt2_dir(dir()));
  EXPECT_TRUE(has(message_of([&] { import_hf_gpt2(dir()); }), "no model.safetensors"));
  write(file("pytorch_model.bin"), "pickle");
  EXPECT_TRUE(has(message_of([&] { import_hf_gpt2(dir()); }), "pytorch_model.bin"));
  EXPECT_TRUE(has(message_of([&] { read_gpt_weights(dir()); }), "pytorch_model.bin"));
  write(file("model.safetensors.index.json"), "{}");
  EXPECT_TRUE(has(message_of([&] { import_hf_gpt2(dir()); }), "sharded"));
}
