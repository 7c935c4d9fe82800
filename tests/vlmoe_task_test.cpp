// Task "vlmoe" (train/vlmoe_task.h): the glyph batches' data order, the retrieval figures against
// hand-computed similarities (ties, shared names), a tiny VL-MoE trained end to end on a synthetic
// glyph set written by the data module (loss falls, resume is bitwise exact, the tokenizer is saved
// beside the checkpoint; with ITM, and with MLM and MIM), on a tiny Fashion-MNIST written by the
// data module (pairs of image and class name, picked by the files' format), and config mistakes as
// errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "checkpoint_tensors.h"
#include "gannet/data/glyph_batches.h"
#include "gannet/data/fashion_mnist.h"
#include "gannet/data/glyph_pairs.h"
#include "gannet/data/image_text_pairs.h"
#include "gannet/train/evaluate_vlmoe.h"
#include "gannet/train/trainer.h"
#include "test_files.h"

using namespace gannet;
using namespace gannet::testing;
using data::GlyphBatches;
using data::GlyphSet;
using data::GlyphTextTokenizer;

namespace {

// Ten 2x2 images, image i filled with the value i, named "PAIR <i>".
GlyphSet numbered_set() {
  GlyphSet set;
  set.images = Tensor::empty({10, 2, 2}, DType::u8);
  for (int i = 0; i < 10; ++i) {
    for (int p = 0; p < 4; ++p) set.images.data<uint8_t>()[i * 4 + p] = (uint8_t)i;
    set.names.push_back("PAIR " + std::to_string(i));
  }
  return set;
}

std::vector<int64_t> pairs_of(GlyphBatches& batches, int64_t index) { return batches.batch(index).pairs; }

}  // namespace

TEST(GlyphBatches, OrderFollowsFromTheSeedAloneInAnyAccessOrder) {
  const GlyphSet set = numbered_set();
  const GlyphTextTokenizer tok = GlyphTextTokenizer::build(set.names);
  GlyphBatches forward(set, tok, 3, 4, 9), backward(set, tok, 3, 4, 9), other(set, tok, 3, 4, 10);
  EXPECT_EQ(forward.batches_per_epoch(), 3);  // 10 pairs: the tail pair of each epoch is left out
  std::vector<std::vector<int64_t>> seen(8);
  for (int64_t i = 7; i >= 0; --i) seen[i] = pairs_of(backward, i);
  bool differs = false;
  for (int64_t i = 0; i < 8; ++i) {
    EXPECT_EQ(pairs_of(forward, i), seen[i]) << "batch " << i;
    differs |= pairs_of(other, i) != seen[i];
  }
  EXPECT_TRUE(differs) << "another seed, another order";
  std::set<int64_t> epoch0;
  for (int64_t i = 0; i < 3; ++i) epoch0.insert(seen[i].begin(), seen[i].end());
  EXPECT_EQ(epoch0.size(), 9u) << "an epoch draws each pair at most once";
  EXPECT_NE(seen[0], seen[3]) << "each epoch a fresh permutation";
}

TEST(GlyphBatches, ImagesAndTextsBelongToTheDrawnPairs) {
  const GlyphSet set = numbered_set();
  const GlyphTextTokenizer tok = GlyphTextTokenizer::build(set.names);
  GlyphBatches batches(set, tok, 4, 5, 1);
  const data::GlyphBatch b = batches.batch(1);
  ASSERT_EQ(b.images.shape(), (Shape{4, 2, 2}));
  ASSERT_EQ(b.tokens.shape(), (Shape{4, 5}));
  for (int64_t r = 0; r < 4; ++r) {
    EXPECT_EQ(b.images.data<uint8_t>()[r * 4 + 3], (uint8_t)b.pairs[r]);
    const std::vector<int32_t> ids(b.tokens.data<int32_t>() + r * 5, b.tokens.data<int32_t>() + r * 5 + 5);
    EXPECT_EQ(tok.decode(ids), set.names[b.pairs[r]]);
  }
  EXPECT_TRUE(has(message_of([&] { GlyphBatches(set, tok, 11, 5, 1); }), "a batch of 11 pairs from a set of 10"));
}

TEST(VlMoeRetrieval, TiesCountAgainstTheHitAndSharedNamesEitherWay) {
  // Pairs 0 and 2 share the name "A".
  const Tensor s = Tensor::from_vector({0.9f, 0.1f, 0.2f,    // image 0: its own text first
                                        0.5f, 0.5f, 0.1f,    // image 1: text 0 ties with its own
                                        0.8f, 0.3f, 0.1f},   // image 2: text 0 is also "A": a hit
                                       {3, 3});
  const train::RetrievalRecall r = train::retrieval_recall(s, {"A", "B", "A"});
  EXPECT_DOUBLE_EQ(r.i2t_r1, 2.0 / 3);
  EXPECT_DOUBLE_EQ(r.i2t_r5, 1.0);
  // Columns: text 0 best at image 0; text 1 at image 1 (0.5 over 0.1, 0.3); text 2 ("A") at image 0.
  EXPECT_DOUBLE_EQ(r.t2i_r1, 1.0);
  EXPECT_DOUBLE_EQ(r.t2i_r5, 1.0);
}

TEST(VlMoeRetrieval, RecallAtFiveCountsTheFifthAndNotTheSixth) {
  // Seven pairs, identity similarities but for image 0, whose own text (0) is beaten by texts 1-4
  // (0.5) and tied by none: rank 5. Column 0: images 1-6 tie with image 0 at 0: rank 7.
  const int n = 7;
  std::vector<float> v(n * n, 0.f);
  for (int i = 1; i < n; ++i) v[i * n + i] = 1.f;
  for (int j = 1; j <= 4; ++j) v[j] = 0.5f;
  v[5] = v[6] = -1.f;
  std::vector<std::string> names;
  for (int i = 0; i < n; ++i) names.push_back(std::string(1, (char)('A' + i)));
  const train::RetrievalRecall r = train::retrieval_recall(Tensor::from_vector(v, {n, n}), names);
  EXPECT_DOUBLE_EQ(r.i2t_r1, 6.0 / 7);
  EXPECT_DOUBLE_EQ(r.i2t_r5, 1.0);
  EXPECT_DOUBLE_EQ(r.t2i_r1, 6.0 / 7);
  EXPECT_DOUBLE_EQ(r.t2i_r5, 6.0 / 7);
  // A constant model finds nothing: every other candidate ties with the hit.
  const train::RetrievalRecall flat = train::retrieval_recall(Tensor::zeros({n, n}), names);
  EXPECT_EQ(flat.i2t_r5 + flat.t2i_r5, 0.0);
}

namespace {

// A synthetic glyph set through the data module's own preparation: the 52 Latin letters of Basic
// Latin, each with its own pseudo-random 8x16 bitmap, a fifth of them held out as test_chars.
class VlMoeTask : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    std::string unicode_data, hex;
    uint64_t bits = 0x9E3779B97F4A7C15ull;
    for (const auto& [first, kind] : {std::pair{0x41, "CAPITAL"}, std::pair{0x61, "SMALL"}})
      for (int k = 0; k < 26; ++k) {
        char cp[8];
        std::snprintf(cp, sizeof cp, "%04X", first + k);
        unicode_data += str(cp, ";LATIN ", kind, " LETTER ", (char)('A' + k), ";Lu;0;L;;;;;N;;;;;\n");
        std::string bitmap;
        for (int d = 0; d < 32; ++d) {
          bits = bits * 6364136223846793005ull + 1442695040888963407ull;
          bitmap += "0123456789ABCDEF"[bits >> 60];
        }
        hex += str(cp, ":", bitmap, "\n");
      }
    write(file("unifont.hex"), hex);
    write(file("UnicodeData.txt"), unicode_data);
    write(file("Blocks.txt"), "0000..007F; Basic Latin\n");
    data::GlyphsOptions o;
    o.out_dir = file("glyphs");
    o.unifont_hex = file("unifont.hex");
    o.unicode_data = file("UnicodeData.txt");
    o.blocks = file("Blocks.txt");
    o.split.block_fraction = 0.0;
    o.split.char_fraction = 0.2;
    data::prepare_glyphs(o);
  }

  // `vlmoe`: the vlmoe block's keys, e.g. "\"itm_weight\": 1".
  std::string config(int64_t steps, const std::string& out, const std::string& vlmoe = "") const {
    return str(R"({"task": "vlmoe", "vlmoe": {)", vlmoe, R"(}, "model": {"image_size": 16, "patch_size": 8, "text_ctx": 8, "n_layer": 2,
      "n_vl_layer": 1, "n_head": 2, "n_embd": 16, "proj_dim": 8, "moe": {"num_experts": 2, "k": 1}},
      "data": {"dir": ")", file("glyphs"), R"("}, "train_micro_batch_size_per_gpu": 8, "train_steps": )", steps,
               R"(, "optimizer": {"type": "AdamW", "params": {"lr": 0.001}},
      "scheduler": {"type": "WarmupCosineLR", "params": {"warmup_num_steps": 2}},
      "eval": {"interval": 0, "batches": 0}, "checkpoint": {"dir": ")", out, R"("}, "seed": 5, "threads": 1})");
  }

  train::TrainResult train(int64_t steps, const std::string& out, int64_t stop_after = -1, bool resume = false,
                           const std::string& vlmoe = "") {
    train::TrainOptions o;
    o.progress = false;
    o.stop_after = stop_after;
    o.resume = resume;
    return train::run_training(train::parse_train_config(config(steps, out, vlmoe), "test config"), o);
  }

  // The training loss of each logged step of a run.
  std::vector<double> losses(const std::string& out) const {
    std::ifstream in(out + "/metrics.jsonl");
    std::vector<double> l;
    for (std::string line; std::getline(in, line);) {
      const nlohmann::json j = nlohmann::json::parse(line);
      if (j.contains("loss")) l.push_back(j["loss"].get<double>());
    }
    return l;
  }
};

double mean(const std::vector<double>& v, size_t begin, size_t end) {
  double s = 0;
  for (size_t i = begin; i < end; ++i) s += v[i];
  return s / (double)(end - begin);
}

}  // namespace

TEST_F(VlMoeTask, TrainsLossFallsAndReportsRetrieval) {
  const train::TrainResult r = train(150, file("run"));
  const std::vector<double> l = losses(file("run"));
  ASSERT_GE(l.size(), 150u);
  // ITC over batches of 8 starts at ln 8 and stays there for some 60 steps while the tiny model breaks
  // its symmetry (measured: the last five steps' mean near 1.0 after 120 steps).
  EXPECT_LT(mean(l, l.size() - 5, l.size()), mean(l, 0, 5) - 0.5);
  EXPECT_EQ(r.validation.keys,
            (std::vector<std::string>{"val_loss", "val_i2t_r1", "val_i2t_r5", "val_t2i_r1", "val_t2i_r5"}));
  for (double v : r.validation.values) EXPECT_TRUE(std::isfinite(v));
  for (size_t i = 1; i < 5; ++i) EXPECT_TRUE(r.validation.values[i] >= 0 && r.validation.values[i] <= 1);
  const GlyphTextTokenizer tok = GlyphTextTokenizer::load(file("run/tokenizer.txt"));
  EXPECT_EQ(tok.id("LATIN") > GlyphTextTokenizer::kMask, true) << "built from the train split's names";
}

TEST_F(VlMoeTask, ResumedRunEndsWhereAnUninterruptedOneDoes) {
  train(12, file("whole"));
  EXPECT_EQ(train(12, file("parts"), 5).steps_done, 5);
  train(12, file("parts"), -1, true);
  EXPECT_EQ(checkpoint_tensors(file("whole/checkpoint.safetensors")),
            checkpoint_tensors(file("parts/checkpoint.safetensors")));
}

// ITM beside ITC: the model gets its head, the log its loss, and a resumed run still ends bitwise
// where an uninterrupted one does (the negatives are drawn from the micro-batch's own seed).
TEST_F(VlMoeTask, ItmTrainsBesideItcAndResumesExactly) {
  const std::string itm = "\"itm_weight\": 0.5";
  train(12, file("whole"), -1, false, itm);
  EXPECT_EQ(train(12, file("parts"), 5, false, itm).steps_done, 5);
  train(12, file("parts"), -1, true, itm);
  const auto whole = checkpoint_tensors(file("whole/checkpoint.safetensors"));
  EXPECT_EQ(whole, checkpoint_tensors(file("parts/checkpoint.safetensors")));
  EXPECT_EQ(whole.count("itm.head.weight"), 1u);
  std::ifstream in(file("whole/metrics.jsonl"));
  int64_t logged = 0;
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);
    if (!j.contains("loss")) continue;
    ASSERT_TRUE(j.contains("itm")) << line;
    EXPECT_TRUE(std::isfinite(j["itm"].get<double>()) && j["itm"].get<double>() > 0) << line;
    ++logged;
  }
  EXPECT_EQ(logged, 12);
}

// The logged means of `key` ("mlm", "mim") over the run's log lines, each present.
std::vector<double> logged(const std::string& out, const std::string& key) {
  std::ifstream in(out + "/metrics.jsonl");
  std::vector<double> v;
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);
    if (!j.contains("loss")) continue;
    EXPECT_TRUE(j.contains(key)) << line;
    if (j.contains(key)) v.push_back(j[key].get<double>());
  }
  return v;
}

// MLM and MIM beside ITC: the model gets the heads and the mask token, the log both losses, both
// fall, and a resumed run ends bitwise where an uninterrupted one does (the masks are drawn from the
// micro-batch's own seed).
TEST_F(VlMoeTask, MlmAndMimTrainBesideItcAndResumeExactly) {
  const std::string both = R"("mlm_weight": 1, "mim_weight": 1, "mim_mask_ratio": 0.5)";
  train(60, file("long"), -1, false, both);
  const std::vector<double> mlm = logged(file("long"), "mlm"), mim = logged(file("long"), "mim");
  ASSERT_EQ(mlm.size(), 60u);
  ASSERT_EQ(mim.size(), 60u);
  // MLM starts near ln(vocabulary) (33 tokens here: 3.44 over the first 5 steps) and MIM near the
  // pixels' mean square (about half the pixels are ink). Measured: MLM 3.44 -> 3.03 over 60 steps.
  EXPECT_LT(mean(mlm, 55, 60), mean(mlm, 0, 5) - 0.25) << mean(mlm, 0, 5) << " -> " << mean(mlm, 55, 60);
  EXPECT_LT(mean(mim, 55, 60), 0.8 * mean(mim, 0, 5)) << mean(mim, 0, 5) << " -> " << mean(mim, 55, 60);
  train(12, file("whole"), -1, false, both);
  EXPECT_EQ(train(12, file("parts"), 5, false, both).steps_done, 5);
  train(12, file("parts"), -1, true, both);
  const auto whole = checkpoint_tensors(file("whole/checkpoint.safetensors"));
  EXPECT_EQ(whole, checkpoint_tensors(file("parts/checkpoint.safetensors")));
  for (const char* name : {"mlm.head.weight", "mlm.head.bias", "img.mask_token", "mim.head.weight", "mim.head.bias"})
    EXPECT_EQ(whole.count(name), 1u) << name;
  EXPECT_EQ(checkpoint_tensors(file("long/checkpoint.safetensors")).count("itm.head.weight"), 0u);
}

namespace {

// A tiny Fashion-MNIST through the data module's own preparation: 28 x 28 images, 40 train and 20
// test, labels cycling through the 10 classes, each class a bright band at rows of its own with
// pseudo-random noise, so the image tells the class.
class VlMoeFashion : public gannet::testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    std::filesystem::create_directories(file("src"));
    uint64_t bits = 0x2545F4914F6CDD1Dull;
    auto split = [&](const std::string& prefix, int n) {
      data::IdxArray images{{n, 28, 28}, {}}, labels{{n}, {}};
      for (int i = 0; i < n; ++i) {
        const int label = i % 10;
        labels.data.push_back((uint8_t)label);
        for (int p = 0; p < 28 * 28; ++p) {
          bits = bits * 6364136223846793005ull + 1442695040888963407ull;
          const bool band = p / 28 / 3 == label;
          images.data.push_back((uint8_t)(band ? 200 + (bits >> 61) : bits >> 59));
        }
      }
      data::write_idx_gz(file("src/" + prefix + "-images-idx3-ubyte.gz"), images);
      data::write_idx_gz(file("src/" + prefix + "-labels-idx1-ubyte.gz"), labels);
    };
    split("train", 40);
    split("t10k", 20);
    data::FashionMnistOptions o;
    o.source_dir = file("src");
    o.out_dir = file("fashion");
    data::prepare_fashion_mnist(o);
  }

  std::string config(int64_t steps, int64_t image_size, const std::string& vlmoe, int64_t patch) const {
    return str(R"({"task": "vlmoe", "vlmoe": {)", vlmoe, R"(}, "model": {"image_size": )", image_size,
               R"(, "patch_size": )", patch, R"(, "text_ctx": 6, "n_layer": 2, "n_vl_layer": 1, "n_head": 2, "n_embd": 16,
      "proj_dim": 8, "moe": {"num_experts": 2, "k": 1}}, "data": {"dir": ")", file("fashion"),
               R"("}, "train_micro_batch_size_per_gpu": 8, "train_steps": )", steps,
               R"(, "optimizer": {"type": "AdamW", "params": {"lr": 0.002}},
      "scheduler": {"type": "WarmupCosineLR", "params": {"warmup_num_steps": 2}},
      "eval": {"interval": 0, "batches": 0}, "checkpoint": {"dir": ")", file("run"), R"("}, "seed": 3, "threads": 1})");
  }

  train::TrainResult train(int64_t steps, int64_t image_size = 28, const std::string& vlmoe = "", int64_t patch = 7) {
    train::TrainOptions o;
    o.progress = false;
    return train::run_training(train::parse_train_config(config(steps, image_size, vlmoe, patch), "test config"), o);
  }
};

}  // namespace

TEST_F(VlMoeFashion, PairsAreImagesWithTheirClassNames) {
  const data::ImageTextFormat f = data::image_text_format(file("fashion"));
  EXPECT_EQ(f.dataset, "fashion-mnist");
  EXPECT_EQ(f.eval_splits, (std::vector<std::string>{"test"}));
  const GlyphSet test = data::load_image_text_split(file("fashion"), "test");
  ASSERT_EQ(test.images.shape(), (Shape{20, 28, 28}));
  ASSERT_EQ(test.size(), 20);
  EXPECT_EQ(test.names[0], "T-shirt/top");
  EXPECT_EQ(test.names[9], "Ankle boot");
  EXPECT_EQ(test.names[13], "Dress");
  EXPECT_EQ(test.images.data<uint8_t>()[13 * 784 + 3 * 3 * 28] >= 200, true) << "class 3's band: rows 9-11";
  EXPECT_EQ(data::resolve_eval_split(f, ""), "test");
  EXPECT_TRUE(has(message_of([&] { data::resolve_eval_split(f, "test_chars"); }),
                  "vlmoe.eval_split: 'test_chars' is not a held-out split of fashion-mnist data (test)"));
  EXPECT_TRUE(has(message_of([&] { data::load_image_text_split(file("fashion"), "val"); }), "not a split"));
  EXPECT_TRUE(has(message_of([&] { data::image_text_format(file("nowhere")); }), "nowhere"));
}

// ITC on pairs of repeated names (8 pairs of 10 classes a batch), with MLM and MIM, validated on the
// test split by val_loss and recall.
TEST_F(VlMoeFashion, TrainsOnImageClassPairs) {
  const train::TrainResult r = train(30, 28, R"("mlm_weight": 1, "mim_weight": 1)");
  EXPECT_EQ(r.steps_done, 30);
  ASSERT_EQ(r.validation.values.size(), 5u);
  for (double v : r.validation.values) EXPECT_TRUE(std::isfinite(v));
  for (size_t i = 1; i < 5; ++i) EXPECT_TRUE(r.validation.values[i] >= 0 && r.validation.values[i] <= 1);
  const std::vector<double> mlm = logged(file("run"), "mlm");
  ASSERT_EQ(mlm.size(), 30u);
  const GlyphTextTokenizer tok = GlyphTextTokenizer::load(file("run/tokenizer.txt"));
  EXPECT_NE(tok.id("Trouser"), GlyphTextTokenizer::kUnk) << "the class names are the texts";
}

TEST_F(VlMoeFashion, WrongImageSizeOrSplitIsAnError) {
  EXPECT_TRUE(has(message_of([&] { train(2, 16, "", 4); }), "images are [40, 28, 28], model.image_size is 16"));
  EXPECT_TRUE(has(message_of([&] { train(2, 28, R"("eval_split": "test_blocks")"); }),
                  "'test_blocks' is not a held-out split of fashion-mnist data (test)"));
}

TEST_F(VlMoeTask, GlyphDataTakeGlyphSplitsOnly) {
  const data::ImageTextFormat f = data::image_text_format(file("glyphs"));
  EXPECT_EQ(f.dataset, "glyphs");
  EXPECT_EQ(data::resolve_eval_split(f, ""), "test_chars");
  EXPECT_TRUE(has(message_of([&] { train(2, file("run"), -1, false, R"("eval_split": "test")"); }),
                  "'test' is not a held-out split of glyphs data (test_chars or test_blocks)"));
}

TEST(VlMoeTaskConfig, MistakesAreErrors) {
  auto error_of = [&](const std::string& text) {
    return message_of([&] { train::parse_train_config(text, "c.json"); });
  };
  EXPECT_TRUE(has(error_of(R"({"task": "vlmoe", "model": {"n_experts": 4}})"), "unknown key 'n_experts'"));
  EXPECT_TRUE(has(error_of(R"({"task": "vlmoe", "model": {"moe": {"num_expert": 4}}})"), "num_expert"));
  EXPECT_TRUE(has(error_of(R"({"task": "vlmoe", "model": {"vocab_size": 100}})"), "follows from the tokenizer"));
  EXPECT_TRUE(has(error_of(R"({"task": "vlmoe", "model": {"image_size": 16, "patch_size": 5}})"), "patch_size"));
  EXPECT_TRUE(has(error_of(R"({"task": "vlmoe", "vlmoe": {"eval_split": "train"}})"), "not a held-out split"));
  EXPECT_TRUE(has(error_of(R"({"task": "vlmoe", "vlmoe": {"split": "test_chars"}})"), "unknown key 'split'"));
  EXPECT_TRUE(has(error_of(R"({"task": "vlmoe", "vlmoe": {"itm_weight": -1}})"), "itm_weight"));
  EXPECT_TRUE(has(error_of(R"({"task": "vlmoe", "data": {"seq_len": 8}})"), "unknown key 'seq_len'"));
  EXPECT_TRUE(has(error_of(R"({"task": "vlmoe", "activation_checkpointing": {"enabled": true}})"),
                  "not supported by task \"vlmoe\""));
  const train::TrainConfig c = train::parse_train_config(R"({"task": "vlmoe", "model": {"moe": {"num_experts": 4}}})", "c");
  EXPECT_EQ(c.vlmoe.moe.expert_interval, 1) << "VL-MoE's default: every lower block an MoE block";
  EXPECT_EQ(c.data_dir, "data/glyphs");
  EXPECT_EQ(c.vlmoe_eval_split, "") << "the data's default: test_chars for glyphs, test for Fashion-MNIST";
  EXPECT_EQ(c.vlmoe_itm_weight, 0.0) << "ITC alone by default";
  EXPECT_EQ(c.vlmoe_mlm_weight, 0.0);
  EXPECT_EQ(c.vlmoe_mim_weight, 0.0);
  EXPECT_FLOAT_EQ(c.vlmoe_mlm_mask_ratio, 0.15f);
  EXPECT_FLOAT_EQ(c.vlmoe_mim_mask_ratio, 0.4f);
  for (const char* key : {"mlm_weight", "mim_weight"})
    EXPECT_TRUE(has(error_of(str(R"({"task": "vlmoe", "vlmoe": {")", key, R"(": -0.5}})")), key)) << key;
  for (const char* key : {"mlm_mask_ratio", "mim_mask_ratio"})
    for (const char* value : {"0", "1", "1.5", "-0.1", "0.999999999"})
      EXPECT_TRUE(has(error_of(str(R"({"task": "vlmoe", "vlmoe": {")", key, R"(": )", value, "}}")), key))
          << key << " " << value;
  const train::TrainConfig all = train::parse_train_config(
      R"({"task": "vlmoe", "vlmoe": {"mlm_weight": 0.5, "mim_weight": 2, "mlm_mask_ratio": 0.3, "mim_mask_ratio": 0.6,
          "eval_split": "test"}})",
      "c");
  EXPECT_EQ(all.vlmoe_mlm_weight, 0.5);
  EXPECT_EQ(all.vlmoe_mim_weight, 2.0);
  EXPECT_FLOAT_EQ(all.vlmoe_mlm_mask_ratio, 0.3f);
  EXPECT_FLOAT_EQ(all.vlmoe_mim_mask_ratio, 0.6f);
  EXPECT_EQ(all.vlmoe_eval_split, "test");
}
