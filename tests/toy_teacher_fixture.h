// What the compression tests that distil a toy classifier share (XTC, NxMiFormer): the toy
// classification set in a fresh directory, the training config's common keys, a 2-layer teacher
// trained on it once per test, and runs of configs through the shared training loop.
#pragma once
#include <string>

#include "gannet/train/trainer.h"
#include "test_files.h"
#include "toy_classification.h"

namespace gannet::testing {

class ToyTeacherTest : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    write_toy_split(dir_.string(), "train", 240, 1);
    write_toy_split(dir_.string(), "val", 60, 2);
  }

  // The keys after "task" and "teacher": data, batch, `steps`, optimizer, scheduler, evaluation at
  // the end only, checkpoints every 2 steps in <dir>/<out>.
  std::string common(const std::string& out, int steps) const {
    return R"("data": {"dir": ")" + dir_.string() + R"(", "task": "toy"}, "train_micro_batch_size_per_gpu": 8,
      "train_steps": )" + std::to_string(steps) + R"(, "optimizer": {"type": "AdamW", "params": {"lr": 1e-2}},
      "scheduler": {"type": "WarmupCosineLR", "params": {"warmup_num_steps": 1}},
      "eval": {"interval": 0, "batches": 0}, "checkpoint": {"dir": ")" + file(out) + R"(", "interval": 2})";
  }
  // A 2-layer classifier trained on the toy task: the teacher's checkpoint.
  std::string teacher() {
    if (!teacher_.empty()) return teacher_;
    const std::string text = R"({"task": "classify", "model": {"vocab_size": 40, "n_ctx": 16, "n_layer": 2,
      "n_head": 2, "n_embd": 32}, )" + common("teacher", 40) + "}";
    teacher_ = run(text).checkpoint;
    return teacher_;
  }
  static train::TrainResult run(const std::string& text, train::TrainOptions opt = {}) {
    opt.progress = false;
    return train::run_training(train::parse_train_config(text, "c.json"), opt);
  }
  std::string error_of(const std::string& text) {
    return message_of([&] { train::parse_train_config(text, "c.json"); });
  }

  std::string teacher_;
};

}  // namespace gannet::testing
