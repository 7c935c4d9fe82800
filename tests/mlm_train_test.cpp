// The encoder's masked-language-model pre-training (task "mlm") through the shared training loop:
// it learns what the data makes learnable, resumes exactly, writes an encoder checkpoint that the
// GPT's readers refuse by name, and its config refuses what it does not support.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "gannet/core/rng.h"
#include "gannet/data/token_file.h"
#include "gannet/io/checkpoint.h"
#include "gannet/io/encoder_checkpoint.h"
#include "gannet/io/safetensors.h"
#include "gannet/train/trainer.h"
#include "checkpoint_tensors.h"
#include "command_output.h"
#include "test_files.h"

using namespace gannet;
using gannet::testing::has;
using gannet::testing::message_of;

namespace {

class MlmTrain : public gannet::testing::TempDirTest {
 protected:
  // Runs of 64 equal tokens (ids 3..39): a masked token is any of its unmasked neighbours, which
  // bidirectional attention learns fast; chance is 1 in 37.
  void SetUp() override {
    TempDirTest::SetUp();
    Rng rng(3);
    for (auto [name, n] : {std::pair<const char*, int>{"train.tok", 6000}, {"val.tok", 800}}) {
      std::vector<int32_t> t;
      while ((int)t.size() < n) t.insert(t.end(), 64, 3 + (int32_t)rng.below(37));
      t.resize(n);
      data::write_token_file(file(name), t, 40);
    }
  }

  std::string config(const std::string& out, int steps, const std::string& extra = "") const {
    return R"({"task": "mlm", "model": {"vocab_size": 40, "n_ctx": 16, "n_layer": 2, "n_head": 2, "n_embd": 32},
      "data": {"dir": ")" + dir_.string() + R"("}, "train_micro_batch_size_per_gpu": 8,
      "gradient_accumulation_steps": 2, "train_steps": )" + std::to_string(steps) + R"(,
      "optimizer": {"type": "AdamW", "params": {"lr": 1e-2}},
      "scheduler": {"type": "WarmupCosineLR", "params": {"warmup_num_steps": 1}},
      "eval": {"interval": 0, "batches": 4}, "checkpoint": {"dir": ")" + file(out) + R"(", "interval": 2})" +
           extra + "}";
  }

  train::TrainOptions quiet_ = [] {
    train::TrainOptions o;
    o.progress = false;
    return o;
  }();
};

TEST_F(MlmTrain, LearnsToFillMaskedTokensFromTheirContext) {
  const train::TrainResult r = train::run_training(train::parse_train_config(config("out", 150), "mlm.json"), quiet_);
  ASSERT_EQ(r.validation.keys, (std::vector<std::string>{"val_loss", "val_ppl", "val_accuracy"}));
  EXPECT_GT(r.validation.values[2], 0.4);  // chance: 1/37
  EXPECT_LT(r.validation.values[0], std::log(37.0) - 1.0);
  EXPECT_NEAR(r.validation.values[1], std::exp(r.validation.values[0]), 1e-9 * r.validation.values[1]);
  // The checkpoint is an encoder's, with the MLM head and no classifier.
  const models::EncoderConfig c = io::read_encoder_checkpoint_config(r.checkpoint);
  EXPECT_TRUE(c.mlm_head);
  EXPECT_EQ(c.num_classes, 0);
  EXPECT_EQ(c.n_embd, 32);
  // gannet eval masks the same way as validation: the same figures, on the same windows.
  const std::string out = gannet::testing::gannet_output("eval --model " + r.checkpoint + " --data " + file("val.tok"));
  char expect[96];
  std::snprintf(expect, sizeof expect, "masked-token accuracy %.2f%%  loss %.4f", 100 * r.validation.values[2],
                r.validation.values[0]);
  EXPECT_TRUE(has(out, expect)) << out << "\nexpected: " << expect;
}

TEST_F(MlmTrain, ResumeEqualsAnUninterruptedRun) {
  const train::TrainResult whole = train::run_training(train::parse_train_config(config("a", 6), "a.json"), quiet_);
  const train::TrainConfig split = train::parse_train_config(config("b", 6), "b.json");
  train::TrainOptions first = quiet_;
  first.stop_after = 3;
  ASSERT_EQ(train::run_training(split, first).steps_done, 3);
  train::TrainOptions rest = quiet_;
  rest.resume = true;
  const train::TrainResult resumed = train::run_training(split, rest);
  EXPECT_EQ(resumed.steps_done, 6);
  EXPECT_EQ(gannet::testing::checkpoint_tensors(whole.checkpoint), gannet::testing::checkpoint_tensors(resumed.checkpoint));  // bitwise, moments included
  EXPECT_EQ(whole.validation.values, resumed.validation.values);
}

TEST_F(MlmTrain, TheGptReadersRefuseAnEncoderCheckpointByName) {
  const std::string ckpt = train::run_training(train::parse_train_config(config("out", 2), "mlm.json"), quiet_).checkpoint;
  const std::string msg = message_of([&] { io::read_checkpoint_config(ckpt); });
  EXPECT_TRUE(has(msg, "holds a model of type 'encoder', not 'gpt'")) << msg;
}

TEST_F(MlmTrain, ConfigRefusesWhatTheEncoderTasksDoNotSupport) {
  auto error = [&](const std::string& extra) {
    return message_of([&] { train::parse_train_config(config("out", 2, extra), "mlm.json"); });
  };
  EXPECT_TRUE(has(error(R"(, "parallel": {"tensor": 2})"), "for the GPT (task \"lm\") only")) << error("");
  EXPECT_TRUE(has(error(R"(, "data_efficiency": {"enabled": false})"), "data_efficiency is for the GPT"));
  EXPECT_TRUE(has(error(R"(, "mlm": {"mask_prob": 0})"), "mlm.mask_prob"));
  std::string sharded = config("out", 2);
  sharded.replace(sharded.find("\"interval\": 2}"), 14, "\"interval\": 2, \"sharded\": true}");
  EXPECT_TRUE(has(message_of([&] { train::run_training(train::parse_train_config(sharded, "s.json"), quiet_); }),
                  "checkpoint.sharded: this task writes whole checkpoints only"));
  EXPECT_TRUE(has(error(R"(, "mlm": {"mask_ratio": 0.2})"), "mask_ratio"));
  std::string text = config("out", 2);
  text.replace(text.find("\"mlm\""), 5, "\"bert\"");
  EXPECT_TRUE(has(message_of([&] { train::parse_train_config(text, "x.json"); }), "'bert' is not a task"));
  text = config("out", 2);
  text.replace(text.find("\"n_embd\": 32"), 12, "\"n_embd\": 32, \"num_classes\": 3");
  EXPECT_TRUE(has(message_of([&] { train::parse_train_config(text, "x.json"); }), "follow from the task"));
  text = config("out", 2);
  text.replace(text.find("\"n_embd\": 32"), 12, "\"n_embd\": 32, \"moe\": {}");
  EXPECT_TRUE(has(message_of([&] { train::parse_train_config(text, "x.json"); }), "moe"));
}

}  // namespace
