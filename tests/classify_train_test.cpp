// Sequence classification with the encoder (task "classify") through the shared training loop:
// it learns a task its data makes learnable, resumes exactly, and fine-tuning takes the trunk of
// an MLM checkpoint.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "gannet/compress/low_bit_encoder_pack.h"
#include "gannet/core/rng.h"
#include "gannet/data/classification_set.h"
#include "gannet/data/classification_tasks.h"
#include "gannet/data/token_file.h"
#include "gannet/infer/encoder_engine.h"
#include "gannet/io/encoder_checkpoint.h"
#include "gannet/io/low_bit_encoder.h"
#include "gannet/io/safetensors.h"
#include "gannet/metrics/majority_baseline.h"
#include "gannet/train/evaluate_encoder.h"
#include "gannet/train/trainer.h"
#include "checkpoint_tensors.h"
#include "command_output.h"
#include "test_files.h"
#include "toy_classification.h"

using namespace gannet;
using gannet::testing::checkpoint_tensors;
using gannet::testing::has;
using gannet::testing::message_of;

namespace {

class ClassifyTrain : public gannet::testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    gannet::testing::write_toy_split(dir_.string(), "train", 240, 1);
    gannet::testing::write_toy_split(dir_.string(), "val", 60, 2);
    Rng rng(5);  // token files for the MLM run whose trunk fine-tuning takes
    for (auto [name, n] : {std::pair<const char*, int>{"train.tok", 3000}, {"val.tok", 400}}) {
      std::vector<int32_t> t(n);
      for (int32_t& v : t) v = 3 + (int32_t)rng.below(37);
      data::write_token_file(file(name), t, 40);
    }
  }

  std::string config(const std::string& task, const std::string& out, int steps, const std::string& extra = "") const {
    return R"({"task": ")" + task + R"(", "model": {"vocab_size": 40, "n_ctx": 16, "n_layer": 2, "n_head": 2,
      "n_embd": 16}, "data": {"dir": ")" + dir_.string() + R"(")" + (task == "classify" ? R"(, "task": "toy")" : "") +
           R"(}, "train_micro_batch_size_per_gpu": 8, "train_steps": )" + std::to_string(steps) + R"(,
      "optimizer": {"type": "AdamW", "params": {"lr": 1e-2}},
      "scheduler": {"type": "WarmupCosineLR", "params": {"warmup_num_steps": 1}},
      "eval": {"interval": 0, "batches": 0}, "checkpoint": {"dir": ")" + file(out) + R"(", "interval": 2})" +
           extra + "}";
  }

  train::TrainResult run(const std::string& text, train::TrainOptions opt = {}) {
    opt.progress = false;
    return train::run_training(train::parse_train_config(text, "c.json"), opt);
  }

  static std::string gannet_stdout(const std::string& args) { return gannet::testing::gannet_output(args); }
};

TEST_F(ClassifyTrain, LearnsASeparableTask) {
  const train::TrainResult r = run(config("classify", "out", 60));
  ASSERT_EQ(r.validation.keys, (std::vector<std::string>{"val_loss", "val_accuracy", "val_macro_f1"}));
  EXPECT_GT(r.validation.values[1], 0.9);  // chance: 1/3
  EXPECT_GT(r.validation.values[2], 0.9);
  EXPECT_LT(r.validation.values[0], 0.5);
  EXPECT_EQ(io::read_encoder_checkpoint_config(r.checkpoint).num_classes, 3);  // from the data set
}

// `gannet eval` on the checkpoint gives the final validation's figures, and the majority
// baseline of the set (its train split's commonest class, scored on val).
TEST_F(ClassifyTrain, EvalReportsTheValidationFiguresBesideTheMajorityBaseline) {
  const train::TrainResult r = run(config("classify", "out", 20));
  const std::string val = data::classification_set_path(dir_.string(), "toy", "val");
  const std::string out = gannet_stdout("eval --model " + r.checkpoint + " --data " + val);
  char expect[128];
  std::snprintf(expect, sizeof expect, "accuracy %.2f%%  macro-F1 %.2f%%  loss %.4f  (60 windows of toy val)",
                100 * r.validation.values[1], 100 * r.validation.values[2], r.validation.values[0]);
  EXPECT_TRUE(has(out, expect)) << out << "\nexpected: " << expect;
  const data::ClassificationSet train_set =
      data::read_classification_set(data::classification_set_path(dir_.string(), "toy", "train"));
  const metrics::MajorityBaseline b = metrics::majority_baseline(
      train_set.label_vector(), data::read_classification_set(val).label_vector(), 3);
  std::snprintf(expect, sizeof expect, "majority baseline (always '%s',", std::string(1, "abc"[b.majority_class]).c_str());
  EXPECT_TRUE(has(out, expect)) << out;
  std::snprintf(expect, sizeof expect, "accuracy %.2f%%  macro-F1 %.2f%%\n", 100 * b.accuracy, 100 * b.macro_f1);
  EXPECT_TRUE(has(out, expect)) << out;
  // A token file suits only an MLM head.
  EXPECT_TRUE(has(gannet_stdout("eval --model " + r.checkpoint + " --data " + file("val.tok") + " 2>&1"),
                  "has no MLM head"));
}

// A packed low-bit encoder (XTC) runs on the engine's low-bit kernels with the same report; an f32
// classifier runs on its f32 engine with --engine.
TEST_F(ClassifyTrain, EvalRunsAPackedLowBitEncoderOnTheEngine) {
  const train::TrainResult r = run(config("classify", "out", 20));
  const std::string val = data::classification_set_path(dir_.string(), "toy", "val");
  models::Encoder model(io::read_encoder_checkpoint_config(r.checkpoint));
  io::load_encoder_checkpoint(r.checkpoint, model, nullptr, nullptr);
  const data::ClassificationSet set = data::read_classification_set(val);
  auto expected = [&](infer::EncoderEngine& e, const std::string& how) {
    const train::ClassifierEval v = train::evaluate_classifier(
        [&](const Tensor& t, const Tensor& m) { return e.logits(t, m); }, set, 8, 0);
    char line[160];
    std::snprintf(line, sizeof line, "accuracy %.2f%%  macro-F1 %.2f%%  loss %.4f  (60 windows of toy val, engine %s)",
                  100 * v.confusion.accuracy(), 100 * v.confusion.macro_f1(), v.loss, how.c_str());
    return std::string(line);
  };
  for (const auto& [scheme, bits] : {std::pair{"w1a8", 1}, std::pair{"w2a8", 2}}) {
    const std::string packed = file(std::string(scheme) + ".safetensors");
    io::save_low_bit_encoder(packed, compress::pack_low_bit_encoder(model, {bits, 0}, {bits, 0}, scheme));
    infer::EncoderEngine e = infer::EncoderEngine::low_bit(io::read_low_bit_encoder(packed));
    const std::string out = gannet_stdout("eval --model " + packed + " --data " + val + " --threads 1");
    EXPECT_TRUE(has(out, expected(e, scheme))) << out << "\nexpected: " << expected(e, scheme);
    EXPECT_TRUE(has(out, "majority baseline (always '")) << out;
    EXPECT_TRUE(has(gannet_stdout("eval --model " + packed + " --data " + file("val.tok") + " 2>&1"),
                    "is a packed low-bit classifier: evaluate it on a classification set"));
  }
  infer::EncoderEngine f = infer::EncoderEngine::f32(model);
  const std::string out = gannet_stdout("eval --model " + r.checkpoint + " --data " + val + " --engine --threads 1");
  EXPECT_TRUE(has(out, expected(f, "f32"))) << out << "\nexpected: " << expected(f, "f32");
}

TEST_F(ClassifyTrain, ResumeEqualsAnUninterruptedRun) {
  const train::TrainResult whole = run(config("classify", "a", 6));
  train::TrainOptions first;
  first.stop_after = 3;
  ASSERT_EQ(run(config("classify", "b", 6), first).steps_done, 3);
  train::TrainOptions rest;
  rest.resume = true;
  const train::TrainResult resumed = run(config("classify", "b", 6), rest);
  EXPECT_EQ(checkpoint_tensors(whole.checkpoint), checkpoint_tensors(resumed.checkpoint));
  EXPECT_EQ(whole.validation.values, resumed.validation.values);
}

TEST_F(ClassifyTrain, FineTuningStartsFromTheMlmCheckpointsTrunk) {
  const std::string mlm = run(config("mlm", "mlm", 2)).checkpoint;
  // A learning rate too small to move a float: the trunk after one step is the MLM's, bitwise.
  std::string text = config("classify", "ft", 1, R"(, "init": {"checkpoint": ")" + mlm + R"("})");
  text.replace(text.find("1e-2"), 4, "1e-30");
  const auto tuned = checkpoint_tensors(run(text).checkpoint), pre = checkpoint_tensors(mlm);
  int trunk = 0;
  for (const auto& [name, values] : tuned) {
    if (name.starts_with("optim.") || name.starts_with("classifier.")) continue;
    ASSERT_TRUE(pre.count(name)) << name;
    EXPECT_EQ(values, pre.at(name)) << name;
    ++trunk;
  }
  EXPECT_EQ(trunk, 2 + 2 + 2 * 12);  // wte, wpe, ln_f.{weight,bias}, 12 tensors per block
  // Another trunk is refused by name.
  std::string wider = config("classify", "ft2", 1, R"(, "init": {"checkpoint": ")" + mlm + R"("})");
  wider.replace(wider.find("\"n_embd\": 16"), 12, "\"n_embd\": 32");
  EXPECT_TRUE(has(message_of([&] { run(wider); }), "has another trunk than the requested model"));
}

TEST_F(ClassifyTrain, AMissingSetNamesTheCommandThatMakesIt) {
  std::string text = config("classify", "out", 1);
  text.replace(text.find("\"toy\""), 5, "\"brown-genre\"");
  const std::string msg = message_of([&] { run(text); });
  EXPECT_TRUE(has(msg, "brown-genre")) << msg;
  EXPECT_TRUE(has(msg, "gannet data tasks")) << msg;
}

}  // namespace
