// Image classification on VL-MoE (issue 21): the classifier's head gradient against central
// differences; task "vlmoe_classify" on tiny synthetic glyph-block and Fashion-MNIST-format sets
// written here (the loss falls, the validation figures equal a count made here, resume is bitwise
// exact, init.checkpoint copies the trunk exactly, config mistakes are one-line errors); zero-shot
// classification against cosines computed here directly; `gannet eval` prints the library's figures.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "checkpoint_tensors.h"
#include "command_output.h"
#include "gannet/autograd/ops.h"
#include "gannet/autograd/tape.h"
#include "gannet/data/fashion_baselines.h"
#include "gannet/data/image_classes.h"
#include "gannet/io/safetensors.h"
#include "gannet/io/vlmoe_checkpoint.h"
#include "gannet/io/vlmoe_classifier_checkpoint.h"
#include "gannet/models/vlmoe_classifier.h"
#include "gannet/train/evaluate_vlmoe_classifier.h"
#include "gannet/train/trainer.h"
#include "gannet/train/vlmoe_classify_task.h"
#include "gannet/train/zero_shot_classify.h"
#include "test_files.h"

using namespace gannet;
using namespace gannet::testing;

namespace {

models::VlMoeConfig tiny_config(int64_t image_size = 16) {
  models::VlMoeConfig c;
  c.image_size = image_size;
  c.patch_size = image_size / 2;
  c.vocab_size = 16;
  c.text_ctx = 8;
  c.n_layer = 2;
  c.n_vl_layer = 1;
  c.n_head = 2;
  c.n_embd = 16;
  c.proj_dim = 8;
  c.moe.num_experts = {2};
  c.moe.k = 1;
  c.moe.drop_tokens = false;
  return c;
}

// n images [n, S, S] of `classes` classes (at most 4 distinct): class y fills quadrant y (row y mod
// 2, column y / 2 mod 2) bright, over pseudo-random faint noise.
void synthetic_images(int64_t n, int64_t S, int classes, uint64_t seed, Tensor& images, std::vector<int32_t>& labels) {
  images = Tensor::zeros({n, S, S}, DType::u8);
  labels.clear();
  Rng rng(seed);
  for (int64_t i = 0; i < n; ++i) {
    const int y = (int)(i % classes);
    labels.push_back(y);
    uint8_t* p = images.data<uint8_t>() + i * S * S;
    for (int64_t k = 0; k < S * S; ++k) p[k] = (uint8_t)rng.below(60);
    const int64_t r0 = (y % 2) * S / 2, c0 = (y / 2 % 2) * S / 2;
    for (int64_t r = r0; r < r0 + S / 2; ++r)
      for (int64_t c = c0; c < c0 + S / 2; ++c) p[r * S + c] = 255;
  }
}

Tensor i32_tensor(const std::vector<int32_t>& v) {
  Tensor t = Tensor::empty({(int64_t)v.size()}, DType::i32);
  std::copy(v.begin(), v.end(), t.data<int32_t>());
  return t;
}

// A glyph-format split: images, block labels and the metadata the loader reads.
void write_glyph_split(const std::string& dir, const std::string& split, int64_t n, const std::vector<std::string>& blocks,
                       int used_blocks, uint64_t seed) {
  Tensor images;
  std::vector<int32_t> labels;
  synthetic_images(n, 16, used_blocks, seed, images, labels);
  io::save_safetensors(dir + "/" + split + ".safetensors", {{"images", images}, {"block", i32_tensor(labels)}},
                       {{"format", data::kGlyphPairsFormat}, {"split", split}, {"texts", split + ".jsonl"},
                        {"blocks", nlohmann::json(blocks).dump()}, {"categories", "[\"Lu\"]"}});
}

void write_fashion_split(const std::string& dir, const std::string& split, int64_t n,
                         const std::vector<std::string>& classes, uint64_t seed) {
  Tensor images;
  std::vector<int32_t> labels;
  synthetic_images(n, 28, (int)classes.size(), seed, images, labels);
  io::save_safetensors(dir + "/" + split + ".safetensors", {{"images", images}, {"label", i32_tensor(labels)}},
                       {{"format", data::kImageClassesFormat}, {"split", split}, {"texts", "classes.txt"},
                        {"classes", nlohmann::json(classes).dump()}});
}

const std::vector<std::string> kBlocks = {"Basic Latin", "Latin-1 Supplement", "Greek and Coptic", "Cyrillic",
                                          "Armenian"};
const std::vector<std::string> kClasses = {"T-shirt/top", "Trouser", "Pullover", "Ankle boot"};

class VlMoeClassify : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    std::filesystem::create_directories(file("glyphs"));
    std::filesystem::create_directories(file("fashion"));
    // Four of five blocks used; test_blocks holds the fifth alone in the real data's manner.
    write_glyph_split(file("glyphs"), "train", 96, kBlocks, 4, 1);
    write_glyph_split(file("glyphs"), "test_chars", 20, kBlocks, 4, 2);
    write_glyph_split(file("glyphs"), "test_blocks", 8, kBlocks, 4, 3);
    write_fashion_split(file("fashion"), "train", 96, kClasses, 4);
    write_fashion_split(file("fashion"), "test", 22, kClasses, 5);
  }

  static std::string model_block(int64_t image_size) {
    return str(R"({"image_size": )", image_size, R"(, "patch_size": )", image_size == 28 ? 7 : 8,
               R"(, "text_ctx": 8, "n_layer": 2, "n_vl_layer": 1, "n_head": 2, "n_embd": 16, "proj_dim": 8,
      "moe": {"num_experts": 2, "k": 1, "drop_tokens": false}})");
  }

  // `head`: the config's first keys (model or init block), `extra`: more keys.
  std::string config(const std::string& data, const std::string& head, int64_t steps, const std::string& out,
                     const std::string& extra = "") const {
    return str(R"({"task": "vlmoe_classify", )", head, R"(, "data": {"dir": ")", file(data),
               R"("}, "train_micro_batch_size_per_gpu": 8, "train_steps": )", steps,
               R"(, "optimizer": {"type": "AdamW", "params": {"lr": 0.002}},
      "scheduler": {"type": "WarmupCosineLR", "params": {"warmup_num_steps": 1}},
      "eval": {"interval": 0, "batches": 0}, "checkpoint": {"dir": ")", file(out), R"("}, "seed": 5, "threads": 1)",
               extra, "}");
  }
  std::string glyph_config(int64_t steps, const std::string& out, const std::string& extra = "") const {
    return config("glyphs", str(R"("model": )", model_block(16)), steps, out, extra);
  }

  train::TrainResult train(const std::string& text, int64_t stop_after = -1, bool resume = false) {
    train::TrainOptions o;
    o.progress = false;
    o.stop_after = stop_after;
    o.resume = resume;
    return train::run_training(train::parse_train_config(text, "test config"), o);
  }

  std::vector<double> losses(const std::string& out) const {
    std::ifstream in(file(out) + "/metrics.jsonl");
    std::vector<double> l;
    for (std::string line; std::getline(in, line);) {
      const nlohmann::json j = nlohmann::json::parse(line);
      if (j.contains("loss")) l.push_back(j["loss"].get<double>());
    }
    return l;
  }

  // A VL-MoE "pre-training" checkpoint (untrained weights of seed 3) with a tokenizer beside it.
  std::string write_vlmoe_checkpoint(const std::string& dir, int64_t image_size, const std::vector<std::string>& texts) {
    std::filesystem::create_directories(file(dir));
    const data::GlyphTextTokenizer tok = data::GlyphTextTokenizer::build(texts);
    models::VlMoeConfig c = tiny_config(image_size);
    c.vocab_size = tok.vocab_size();
    models::VlMoe m(c);
    m.init(3);
    const std::string path = file(dir + "/checkpoint.safetensors");
    io::save_vlmoe_checkpoint(path, m, nullptr, {});
    tok.save(file(dir + "/tokenizer.txt"));
    return path;
  }

  models::VlMoeClassifier load_classifier(const std::string& path) const {
    const io::VlMoeClassifierInfo info = io::read_vlmoe_classifier_info(path);
    models::VlMoeClassifier m(info.config, info.n_classes);
    io::load_vlmoe_classifier_checkpoint(path, m, nullptr, nullptr);
    return m;
  }

  static std::pair<int, std::string> gannet(const std::string& args) {
    return command_status(str(GANNET_BINARY, " ", args, " -t 1 2>&1"));
  }
};

double mean(const std::vector<double>& v, size_t begin, size_t end) {
  double s = 0;
  for (size_t i = begin; i < end; ++i) s += v[i];
  return s / (double)(end - begin);
}

// Predictions and loss counted here, one image at a time, from the model's logits.
struct Counted {
  int64_t correct = 0;
  double loss = 0;
};
Counted count_directly(const models::VlMoeClassifier& m, const data::ImageClassSet& set) {
  autograd::NoGrad no_grad;
  Counted c;
  const int64_t S = set.images.dim(1);
  for (int64_t i = 0; i < set.size(); ++i) {
    Tensor img = Tensor::empty({1, S, S}, DType::u8);
    std::copy(set.images.data<uint8_t>() + i * S * S, set.images.data<uint8_t>() + (i + 1) * S * S, img.data<uint8_t>());
    const Tensor logits = m.forward(img).logits.value();
    const float* l = logits.f32();
    int best = 0;
    double z = 0, mx = l[0];
    for (int k = 0; k < m.n_classes(); ++k) {
      if (l[k] > l[best]) best = k;
      mx = std::max(mx, (double)l[k]);
    }
    for (int k = 0; k < m.n_classes(); ++k) z += std::exp((double)l[k] - mx);
    c.correct += best == set.labels[(size_t)i];
    c.loss += -((double)l[set.labels[(size_t)i]] - mx - std::log(z)) / (double)set.size();
  }
  return c;
}

}  // namespace

TEST(VlMoeClassifier, HeadAndTrunkGradientsMatchFiniteDifferences) {
  for (bool dense : {false, true}) {
    models::VlMoeConfig c = tiny_config();
    c.dense = dense;
    models::VlMoeClassifier m(c, 3);
    m.init(7);
    Rng rng(11);
    for (const auto& p : m.parameters())
      for (int64_t i = 0; i < p.var.value().numel(); ++i) p.var.value().f32()[i] += 0.2f * rng.normal();
    Tensor images;
    std::vector<int32_t> labels;
    synthetic_images(5, 16, 3, 13, images, labels);
    const Tensor y = i32_tensor(labels);
    auto loss = [&] { return models::VlMoeClassifier::loss(m.forward(images), y); };
    nn::zero_grad(m.parameters());
    autograd::tape().backward(loss());
    auto loss_value = [&] {
      autograd::NoGrad no_grad;
      return (double)loss().value().f32()[0];
    };
    // The head does not feed the routers: with MoE layers the evaluation pass (no auxiliary loss)
    // has its gradient too. The trunk's is checked on the dense model.
    std::vector<std::pair<std::string, std::vector<int64_t>>> checks = {{"cls.head.weight", {0, 17, 47}},
                                                                        {"cls.head.bias", {0, 2}}};
    if (dense) checks.push_back({"img.patch.weight", {0, 40, 500}});
    for (const auto& [name, indices] : checks) {
      const nn::Parameter* p = nullptr;
      for (const auto& q : m.parameters())
        if (q.name == name) p = &q;
      ASSERT_NE(p, nullptr) << name;
      for (int64_t i : indices) {
        float& w = p->var.value().f32()[i];
        const float saved = w, h = 1e-2f;
        w = saved + h;
        const double up = loss_value();
        w = saved - h;
        const double down = loss_value();
        w = saved;
        const double numeric = (up - down) / (2 * h), analytic = p->var.grad().f32()[i];
        EXPECT_NEAR(analytic, numeric, 1e-4 + 1e-2 * std::fabs(numeric)) << name << "[" << i << "] dense " << dense;
      }
    }
    autograd::tape().clear();
  }
}

TEST(VlMoeClassifier, ParametersAreTheTrunksThenTheHead) {
  models::VlMoeClassifier m(tiny_config(), 4);
  const models::VlMoe trunk(tiny_config());
  ASSERT_EQ(m.parameters().size(), trunk.parameters().size() + 2);
  for (size_t i = 0; i < trunk.parameters().size(); ++i) EXPECT_EQ(m.parameters()[i].name, trunk.parameters()[i].name);
  EXPECT_EQ(m.parameters().end()[-2].name, "cls.head.weight");
  EXPECT_EQ(m.parameters().back().var.value().shape(), Shape({4}));
}

TEST(FashionBaselines, ReadsTheReadmesBenchmarkTable) {
  const std::string md = "text\n\n| Classifier | Preprocessing | Fashion test accuracy | MNIST test accuracy |\n"
                         "| --- | --- | --- | --- |\n|2 Conv| None | 0.916 | - |\n|Bad| x | - | 0.9 |\n"
                         "|HOG+SVM| HOG | 0.926 | - |\n\n|A|B|\n|x| 0.5 |\n";
  const std::vector<data::FashionBaseline> b = data::parse_fashion_benchmark_table(md);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].classifier, "2 Conv");
  EXPECT_DOUBLE_EQ(b[0].accuracy, 0.916);
  EXPECT_EQ(b[1].classifier, "HOG+SVM");
  EXPECT_EQ(b[1].preprocessing, "HOG");
  EXPECT_FALSE(data::read_fashion_baselines("/nonexistent").found);
}

TEST_F(VlMoeClassify, GlyphBlocksLossFallsAndValidationEqualsADirectCount) {
  const train::TrainResult r = train(glyph_config(120, "run"));
  const std::vector<double> l = losses("run");
  ASSERT_GE(l.size(), 120u);
  EXPECT_LT(mean(l, l.size() - 10, l.size()), mean(l, 0, 10) - 0.3) << "from about ln 5";
  ASSERT_EQ(r.validation.keys, (std::vector<std::string>{"val_loss", "val_accuracy", "val_macro_f1"}));
  const models::VlMoeClassifier m = load_classifier(file("run/checkpoint.safetensors"));
  const data::ImageClassSet val = data::load_image_class_split(file("glyphs"), "test_chars");
  const Counted c = count_directly(m, val);
  EXPECT_NEAR(r.validation.values[0], c.loss, 1e-4);
  EXPECT_DOUBLE_EQ(r.validation.values[1], (double)c.correct / (double)val.size());
  EXPECT_GT(r.validation.values[1], 0.5) << "four separable patterns";
  const io::VlMoeClassifierInfo info = io::read_vlmoe_classifier_info(file("run/checkpoint.safetensors"));
  EXPECT_EQ(info.classes, kBlocks);
  EXPECT_EQ(info.data_format, data::kGlyphPairsFormat);
}

TEST_F(VlMoeClassify, FashionFormatTrainsAndResumesBitwise) {
  const std::string head = str(R"("model": )", model_block(28));
  const train::TrainResult r = train(config("fashion", head, 120, "whole"));
  const std::vector<double> l = losses("whole");
  EXPECT_LT(mean(l, l.size() - 10, l.size()), mean(l, 0, 10) - 0.3) << ::testing::PrintToString(l);
  const models::VlMoeClassifier m = load_classifier(file("whole/checkpoint.safetensors"));
  const data::ImageClassSet val = data::load_image_class_split(file("fashion"), "test");
  EXPECT_DOUBLE_EQ(r.validation.values[1], (double)count_directly(m, val).correct / (double)val.size());
  EXPECT_EQ(train(config("fashion", head, 120, "parts"), 17).steps_done, 17);
  train(config("fashion", head, 120, "parts"), -1, true);
  EXPECT_EQ(checkpoint_tensors(file("whole/checkpoint.safetensors")),
            checkpoint_tensors(file("parts/checkpoint.safetensors")));
}

TEST_F(VlMoeClassify, InitCheckpointCopiesTheTrunkExactly) {
  const std::string init = write_vlmoe_checkpoint("pre", 16, {"LATIN SMALL LETTER A", "GREEK SMALL LETTER ALPHA"});
  const train::TrainConfig cfg =
      train::parse_train_config(config("glyphs", str(R"("init": {"checkpoint": ")", init, R"("})"), 1, "ft"), "t");
  EXPECT_EQ(io::vlmoe_config_to_json(cfg.vlmoe), io::vlmoe_config_to_json(io::read_vlmoe_checkpoint_config(init)));
  // The task's starting model: the checkpoint's trunk, element for element, and a head of its own.
  const std::unique_ptr<train::TrainTask> task = train::make_vlmoe_classify_task(cfg);
  std::map<std::string, std::vector<float>> ft;
  for (const auto& p : task->model().parameters())
    ft[p.name].assign(p.var.value().f32(), p.var.value().f32() + p.var.value().numel());
  const std::map<std::string, std::vector<float>> pre = checkpoint_tensors(init);
  EXPECT_EQ(ft.size(), pre.size() + 2);
  for (const auto& [name, values] : pre) {
    ASSERT_TRUE(ft.count(name)) << name;
    EXPECT_EQ(ft.at(name), values) << name;
  }
  EXPECT_TRUE(ft.count("cls.head.weight"));
  // A model block that agrees is accepted; one that conflicts is an error naming the key.
  train::parse_train_config(config("glyphs", str(R"("init": {"checkpoint": ")", init, R"("}, "model": {"n_embd": 16})"),
                                   1, "ft2"),
                            "t");
  EXPECT_TRUE(has(message_of([&] {
                    train::parse_train_config(
                        config("glyphs", str(R"("init": {"checkpoint": ")", init, R"("}, "model": {"n_embd": 32})"), 1, "x"),
                        "t");
                  }),
                  "model.n_embd: 32 conflicts with init.checkpoint"));
}

TEST_F(VlMoeClassify, ConfigMistakesAreOneLineErrors) {
  auto error = [&](const std::string& text) {
    return message_of([&] { train(text); });
  };
  EXPECT_TRUE(has(error(glyph_config(1, "a", R"(, "vlmoe_classify": {"eval_split": "test_blocks"})")),
                  "test_blocks holds whole Unicode blocks never seen in training"));
  EXPECT_TRUE(has(error(glyph_config(1, "a", R"(, "vlmoe_classify": {"eval_split": "test"})")),
                  "'test' is not a validation split of glyph data"));
  EXPECT_TRUE(has(error(config("fashion", str(R"("model": )", model_block(16)), 1, "a")),
                  "images are 28x28, the model's image_size is 16"));
  const std::string init16 = write_vlmoe_checkpoint("pre16", 16, {"TROUSER"});
  EXPECT_TRUE(has(error(config("fashion", str(R"("init": {"checkpoint": ")", init16, R"("})"), 1, "a")),
                  str("the model's image_size is 16 (", init16, ")")));
  write(file("bad.safetensors"), "not a safetensors file");
  EXPECT_FALSE(error(config("glyphs", str(R"("init": {"checkpoint": ")", file("bad.safetensors"), R"("})"), 1, "a"))
                   .empty());
  EXPECT_TRUE(has(error(config("glyphs", R"("init": {"checkpoint": "/nonexistent/ckpt.safetensors"})", 1, "a")),
                  "/nonexistent/ckpt.safetensors"));
  // A classifier checkpoint is no pre-training checkpoint.
  train(glyph_config(2, "cls"));
  EXPECT_TRUE(has(error(config("glyphs", str(R"("init": {"checkpoint": ")", file("cls/checkpoint.safetensors"), R"("})"),
                               1, "a")),
                  "vlmoe_classifier"));
  EXPECT_TRUE(has(error(glyph_config(1, "a", R"(, "vlmoe_classify": {"eval_splt": "test_chars"})")), "eval_splt"));
  EXPECT_TRUE(has(error(config("glyphs", R"("model": {"image_size": 16, "vocab_size": 5})", 1, "a")), "vocab_size"));
  for (const std::string& e : {error(glyph_config(1, "a", R"(, "vlmoe_classify": {"eval_split": "test_blocks"})"))})
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
}

TEST_F(VlMoeClassify, ZeroShotPredictsTheClassOfTheHighestDirectCosine) {
  const std::string path = write_vlmoe_checkpoint("pre", 28, kClasses);
  models::VlMoe m(io::read_vlmoe_checkpoint_config(path));
  io::load_vlmoe_checkpoint(path, m, nullptr, nullptr);
  const data::GlyphTextTokenizer tok = data::GlyphTextTokenizer::load(file("pre/tokenizer.txt"));
  const data::ImageClassSet test = data::load_image_class_split(file("fashion"), "test");
  const train::ZeroShotResult r = train::zero_shot_classify(m, tok, test.images, test.labels, test.classes, 1, 0);
  autograd::NoGrad no_grad;
  // Each class name and image alone, through the model's projections, normalised here in double.
  auto unit = [](const Tensor& row) {
    double n = 0;
    for (int64_t i = 0; i < row.numel(); ++i) n += (double)row.f32()[i] * row.f32()[i];
    std::vector<double> v;
    for (int64_t i = 0; i < row.numel(); ++i) v.push_back(row.f32()[i] / std::sqrt(n));
    return v;
  };
  std::vector<std::vector<double>> texts;
  for (const std::string& name : kClasses) {
    Tensor tokens, mask;
    tok.encode_batch({name}, m.config().text_ctx, tokens, mask);
    texts.push_back(unit(m.text_projection(m.forward({{}, tokens, mask}).text_pooled).value()));
  }
  int64_t correct = 0;
  for (int64_t i = 0; i < test.size(); ++i) {
    Tensor img = Tensor::empty({1, 28, 28}, DType::u8);
    std::copy(test.images.data<uint8_t>() + i * 784, test.images.data<uint8_t>() + (i + 1) * 784, img.data<uint8_t>());
    const std::vector<double> v = unit(m.image_projection(m.forward({img, {}, {}}).image_pooled).value());
    int best = 0;
    std::vector<double> cos;
    for (size_t k = 0; k < texts.size(); ++k) {
      double d = 0;
      for (size_t j = 0; j < v.size(); ++j) d += v[j] * texts[k][j];
      cos.push_back(d);
      EXPECT_NEAR(r.similarity.f32()[i * 4 + (int64_t)k], d, 1e-5) << i << "," << k;
      if (d > cos[(size_t)best]) best = (int)k;
    }
    EXPECT_EQ(r.predictions[(size_t)i], best) << i;
    correct += best == test.labels[(size_t)i];
  }
  EXPECT_DOUBLE_EQ(r.confusion.accuracy(), (double)correct / (double)test.size());
}

TEST_F(VlMoeClassify, EvalPrintsTheLibrarysFigures) {
  // A classifier on the Fashion-format set: its line and per-class lines.
  train(config("fashion", str(R"("model": )", model_block(28)), 20, "cls"));
  const std::string ckpt = file("cls/checkpoint.safetensors");
  auto [rc, out] = gannet(str("eval -m ", ckpt, " -d ", file("fashion"), " --batch 4"));
  ASSERT_EQ(rc, 0) << out;
  const models::VlMoeClassifier m = load_classifier(ckpt);
  const data::ImageClassSet test = data::load_image_class_split(file("fashion"), "test");
  const train::ImageClassifierEval e = train::evaluate_vlmoe_classifier(m, test, 4, 0);
  char line[200];
  std::snprintf(line, sizeof line, "%-12s %6ld %8.4f %8.2f%% %8.2f%%", "test", (long)e.images, e.loss,
                100 * e.confusion.accuracy(), 100 * train::macro_f1_present(e.confusion));
  EXPECT_TRUE(has(out, line)) << line << "\nin:\n" << out;
  std::snprintf(line, sizeof line, "%-14s %6ld %8.2f%%", "Ankle boot", (long)e.confusion.true_count(3),
                100 * train::class_accuracy(e.confusion, 3));
  EXPECT_TRUE(has(out, line)) << line << "\nin:\n" << out;
  EXPECT_TRUE(has(out, data::read_fashion_baselines().found ? "baselines (Debian dataset-fashion-mnist)"
                                                           : "not installed"))
      << out;
  // Zero-shot on a vlmoe checkpoint with a Fashion-format directory.
  const std::string pre = write_vlmoe_checkpoint("pre", 28, kClasses);
  std::tie(rc, out) = gannet(str("eval -m ", pre, " -d ", file("fashion"), " --batch 4"));
  ASSERT_EQ(rc, 0) << out;
  models::VlMoe vm(io::read_vlmoe_checkpoint_config(pre));
  io::load_vlmoe_checkpoint(pre, vm, nullptr, nullptr);
  const train::ZeroShotResult z = train::zero_shot_classify(
      vm, data::GlyphTextTokenizer::load(file("pre/tokenizer.txt")), test.images, test.labels, test.classes, 4, 0);
  std::snprintf(line, sizeof line, "%-12s %6ld %8.2f%% %8.2f%%", "test", (long)test.size(), 100 * z.confusion.accuracy(),
                100 * train::macro_f1_present(z.confusion));
  EXPECT_TRUE(has(out, line)) << line << "\nin:\n" << out;
  EXPECT_TRUE(has(out, "zero-shot")) << out;
  // Glyph blocks: one line on test_chars.
  train(glyph_config(2, "gcls"));
  std::tie(rc, out) = gannet(str("eval -m ", file("gcls/checkpoint.safetensors"), " -d ", file("glyphs"), " --batch 4"));
  ASSERT_EQ(rc, 0) << out;
  EXPECT_TRUE(has(out, "test_chars       20")) << out;
}

TEST_F(VlMoeClassify, EvalBadInputIsOneErrorLine) {
  train(config("fashion", str(R"("model": )", model_block(28)), 2, "cls"));
  const std::string ckpt = file("cls/checkpoint.safetensors");
  for (const std::string& args : {str("eval -m ", ckpt, " -d ", file("glyphs")),  // another format
                                  str("eval -m ", ckpt, " -d ", file("fashion/test.safetensors")),
                                  str("eval -m ", ckpt, " -d ", file("fashion"), " --seq-len 4"),
                                  str("eval -m ", ckpt, " -d ", file("glyphs")) + " --engine"}) {
    const auto [rc, out] = gannet(args);
    EXPECT_NE(rc, 0) << args << "\n" << out;
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << args << "\n" << out;
  }
  // A vlmoe checkpoint of 16 x 16 images on 28 x 28 Fashion-MNIST.
  write_vlmoe_checkpoint("pre16", 16, kClasses);
  const auto [rc, out] = gannet(str("eval -m ", file("pre16/checkpoint.safetensors"), " -d ", file("fashion")));
  EXPECT_NE(rc, 0) << out;
  EXPECT_TRUE(has(out, "image_size is 16")) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}
