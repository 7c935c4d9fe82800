// GptWeights (io/gpt_weights.h) from gannet model and checkpoint files.
#include "gannet/io/gpt_weights.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <set>

#include "gannet/io/checkpoint.h"
#include "gannet/io/model_config.h"
#include "gannet/io/safetensors.h"
#include "test_files.h"

using namespace gannet;
using namespace gannet::testing;
using namespace gannet::io;
namespace fs = std::filesystem;

namespace {

class GptWeightsTest : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    model_.init(5);
  }

  static models::GptConfig tiny() {
    models::GptConfig c;
    c.vocab_size = 29;
    c.n_ctx = 10;
    c.n_layer = 2;
    c.n_head = 2;
    c.n_embd = 8;
    return c;
  }

  // The model's weights under their names, optionally as bf16, with gannet's model metadata.
  void save_model_file(const std::string& path, DType dtype,
                       const std::function<void(std::vector<std::pair<std::string, Tensor>>&)>& edit = {}) {
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const auto& p : model_.parameters()) {
      Tensor t = p.var.value();
      if (dtype == DType::bf16) {
        Tensor b = Tensor::empty(t.shape(), DType::bf16);
        for (int64_t i = 0; i < t.numel(); ++i) static_cast<uint16_t*>(b.raw())[i] = f32_to_bf16(t.f32()[i]);
        t = b;
      }
      tensors.emplace_back(p.name, t);
    }
    if (edit) edit(tensors);
    save_safetensors(path, tensors, {{"model_config", gpt_config_to_json(model_.config()).dump()}});
  }

  models::Gpt model_{tiny()};
};

void expect_same_values(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  ASSERT_EQ(a.dtype(), DType::f32) << what;
  ASSERT_EQ(b.dtype(), DType::f32) << what;
  for (int64_t i = 0; i < a.numel(); ++i) ASSERT_EQ(a.f32()[i], b.f32()[i]) << what << " element " << i;
}

}  // namespace

TEST_F(GptWeightsTest, ShapesFollowTheModelsParameterList) {
  for (models::GptConfig c : {tiny(), models::GptConfig{}}) {
    const auto shapes = gpt_weight_shapes(c);
    const models::Gpt gpt(c);
    ASSERT_EQ(shapes.size(), gpt.parameters().size());
    for (size_t i = 0; i < shapes.size(); ++i) {
      EXPECT_EQ(shapes[i].first, gpt.parameters()[i].name);
      EXPECT_EQ(shapes[i].second, gpt.parameters()[i].var.shape()) << shapes[i].first;
    }
  }
}

TEST_F(GptWeightsTest, ReadsACheckpointWithoutItsOptimizerState) {
  optim::AdamW adamw(model_.parameters(), optim::AdamWOptions{});
  save_checkpoint(file("ckpt.safetensors"), model_, &adamw, TrainState{});
  GptWeights w = read_gpt_weights(file("ckpt.safetensors"));
  EXPECT_EQ(w.config, tiny());
  ASSERT_EQ(w.tensors.size(), model_.parameters().size());
  for (const auto& p : model_.parameters()) expect_same_values(w.at(p.name, p.var.shape()), p.var.value(), p.name);

  models::Gpt loaded(tiny());
  load_gpt_weights(w, loaded);
  for (size_t i = 0; i < loaded.parameters().size(); ++i)
    expect_same_values(loaded.parameters()[i].var.value(), model_.parameters()[i].var.value(),
                       loaded.parameters()[i].name);

  // A model file (no optimizer) reads the same.
  save_checkpoint(file("model.safetensors"), model_, nullptr, TrainState{});
  EXPECT_EQ(read_gpt_weights(file("model.safetensors")).tensors.size(), model_.parameters().size());
}

TEST_F(GptWeightsTest, KeepsBf16AsStoredAndWidensOnLoad) {
  save_model_file(file("bf16.safetensors"), DType::bf16);
  GptWeights w = read_gpt_weights(file("bf16.safetensors"));
  models::Gpt loaded(tiny());
  load_gpt_weights(w, loaded);
  for (size_t i = 0; i < model_.parameters().size(); ++i) {
    const auto& p = model_.parameters()[i];
    const Tensor& t = w.at(p.name, p.var.shape());
    ASSERT_EQ(t.dtype(), DType::bf16) << p.name;
    const float* got = loaded.parameters()[i].var.value().f32();
    for (int64_t j = 0; j < t.numel(); ++j)
      ASSERT_EQ(got[j], bf16_to_f32(f32_to_bf16(p.var.value().f32()[j]))) << p.name << " " << j;
  }
}

TEST_F(GptWeightsTest, AtChecksNameAndShape) {
  save_checkpoint(file("m.safetensors"), model_, nullptr, TrainState{});
  GptWeights w = read_gpt_weights(file("m.safetensors"));
  EXPECT_TRUE(has(message_of([&] { w.at("h.9.ln_1.weight", {8}); }), "no tensor 'h.9.ln_1.weight'"));
  std::string msg = message_of([&] { w.at("wte.weight", {8, 29}); });
  EXPECT_TRUE(has(msg, "wte.weight") && has(msg, "[8, 29]")) << msg;
  models::GptConfig other = tiny();
  other.n_layer = 1;
  models::Gpt small(other);
  EXPECT_TRUE(has(message_of([&] { load_gpt_weights(w, small); }), "does not match"));
}

TEST_F(GptWeightsTest, BadFilesNameTheFileAndTensor) {
  EXPECT_TRUE(has(message_of([&] { read_gpt_weights(file("none.safetensors")); }), "none.safetensors"));

  save_model_file(file("a.safetensors"), DType::f32, [](auto& t) { t.erase(t.begin() + 3); });
  std::string msg = message_of([&] { read_gpt_weights(file("a.safetensors")); });
  EXPECT_TRUE(has(msg, "a.safetensors") && has(msg, "'h.0.ln_1.bias' is missing")) << msg;

  save_model_file(file("b.safetensors"), DType::f32, [](auto& t) { t[2].second = Tensor::zeros({9}); });
  msg = message_of([&] { read_gpt_weights(file("b.safetensors")); });
  EXPECT_TRUE(has(msg, "b.safetensors") && has(msg, "h.0.ln_1.weight") && has(msg, "[8]")) << msg;

  save_model_file(file("c.safetensors"), DType::f32, [](auto& t) { t.emplace_back("h.0.extra", Tensor::zeros({2})); });
  msg = message_of([&] { read_gpt_weights(file("c.safetensors")); });
  EXPECT_TRUE(has(msg, "c.safetensors") && has(msg, "unknown tensor 'h.0.extra'")) << msg;

  save_model_file(file("d.safetensors"), DType::f32, [](auto& t) { t[0].second = Tensor::zeros({29, 8}, DType::i32); });
  msg = message_of([&] { read_gpt_weights(file("d.safetensors")); });
  EXPECT_TRUE(has(msg, "d.safetensors") && has(msg, "expected f32 or bf16")) << msg;

  save_safetensors(file("e.safetensors"), {{"wte.weight", Tensor::zeros({29, 8})}});
  msg = message_of([&] { read_gpt_weights(file("e.safetensors")); });
  EXPECT_TRUE(has(msg, "e.safetensors") && has(msg, "model_config")) << msg;
}
