// Training with the data_efficiency block end to end: resume mid-curriculum and mid random-LTD
// schedule equals an uninterrupted run, the metrics log's counts, the layer-token LR schedule,
// and a bad config through the real binary.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "gannet/core/rng.h"
#include "gannet/data/difficulty.h"
#include "gannet/data/token_file.h"
#include "gannet/io/safetensors.h"
#include "gannet/optim/schedule.h"
#include "gannet/train/trainer.h"
#include "checkpoint_tensors.h"
#include "command_output.h"
#include "test_files.h"

using namespace gannet;

namespace {
class DataEfficiencyTrain : public gannet::testing::TempDirTest {
 protected:
  void SetUp() override {
    gannet::testing::TempDirTest::SetUp();
    Rng rng(7);
    for (auto [name, n] : {std::pair<const char*, int>{"train.tok", 4000}, {"val.tok", 600}}) {
      std::vector<int32_t> t(n);
      for (int i = 0; i < n; ++i) t[i] = rng.uniform() < 0.03f ? 2 : rng.uniform() < 0.8f ? 3 + (i * 7) % 31 : (int32_t)rng.below(40);
      data::write_token_file(file(name), t, 40);
    }
    data::AnalyzeOptions o;
    o.token_file = file("train.tok");
    o.out_dir = file("idx");
    o.seq_len = 16;
    data::analyze_difficulty(o);
  }

  std::string config(const std::string& out, int steps) const {
    const std::string idx = file("idx");
    return R"({"model": {"vocab_size": 40, "n_ctx": 16, "n_layer": 4, "n_head": 2, "n_embd": 16},
      "data": {"dir": ")" + dir_.string() + R"("}, "train_micro_batch_size_per_gpu": 4,
      "gradient_accumulation_steps": 2, "train_steps": )" + std::to_string(steps) + R"(,
      "optimizer": {"type": "AdamW", "params": {"lr": 1e-2}},
      "scheduler": {"type": "WarmupCosineLR", "params": {"warmup_num_steps": 2}},
      "eval": {"interval": 3, "batches": 2}, "checkpoint": {"dir": ")" + file(out) + R"(", "interval": 2},
      "data_efficiency": {"enabled": true, "seed": 5,
        "data_sampling": {"enabled": true, "curriculum_learning": {"enabled": true, "curriculum_metrics": {
          "seqlen_truncate": {"min_difficulty": 6, "max_difficulty": 16, "schedule_type": "fixed_linear",
            "schedule_config": {"total_curriculum_step": 6, "difficulty_step": 2}},
          "vocabularyrarity": {"index_to_sample_path": ")" + data::index_to_sample_path(idx, "vocabularyrarity") +
           R"(", "index_to_metric_path": ")" + data::index_to_metric_path(idx, "vocabularyrarity") + R"(",
            "difficulty_type": "percentile", "min_difficulty": 20, "max_difficulty": 100,
            "schedule_type": "fixed_root", "schedule_config": {"total_curriculum_step": 8, "root_degree": 2}}}}},
        "data_routing": {"enabled": true, "random_ltd": {"enabled": true, "random_ltd_layer_id": [1, 2],
          "random_ltd_schedule": {"min_value": 4, "max_value": 16, "schedule_type": "fixed_linear",
            "schedule_config": {"require_steps": 7, "seq_per_step": 2}},
          "layer_token_lr_schedule": {"enabled": true}}}}})";
  }

  std::vector<nlohmann::json> log_of(const std::string& out) const {
    std::ifstream in(file(out) + "/metrics.jsonl");
    std::vector<nlohmann::json> lines;
    std::string s;
    while (std::getline(in, s)) lines.push_back(nlohmann::json::parse(s));
    return lines;
  }
};
}  // namespace

TEST_F(DataEfficiencyTrain, ResumeMidScheduleEqualsAnUninterruptedRun) {
  train::TrainOptions quiet;
  quiet.progress = false;
  auto whole = train::parse_train_config(config("a", 9), "a.json");
  train::TrainResult ra = train::run_training(whole, quiet);
  ASSERT_EQ(ra.steps_done, 9);
  EXPECT_TRUE(std::isfinite(ra.val_loss));

  auto split = train::parse_train_config(config("b", 9), "b.json");
  train::TrainOptions first = quiet;
  first.stop_after = 4;  // mid-curriculum (seqlen 12 of 6..16) and mid random-LTD (kept 10 of 4..16)
  ASSERT_EQ(train::run_training(split, first).steps_done, 4);
  train::TrainOptions rest = quiet;
  rest.resume = true;
  train::TrainResult rb = train::run_training(split, rest);
  EXPECT_EQ(rb.steps_done, 9);
  EXPECT_EQ(gannet::testing::checkpoint_tensors(ra.checkpoint), gannet::testing::checkpoint_tensors(rb.checkpoint));  // bit for bit
  EXPECT_DOUBLE_EQ(ra.val_loss, rb.val_loss);

  // The logs agree on every count (wall-clock aside).
  auto la = log_of("a"), lb = log_of("b");
  auto steps_of = [](const std::vector<nlohmann::json>& l) {
    std::vector<nlohmann::json> out;
    for (const auto& j : l)
      if (j.contains("loss")) out.push_back({j["step"], j["loss"], j["lr"], j["tokens"], j["layer_tokens"],
                                             j["seq_len"], j["kept_tokens"], j["difficulty"]});
    return out;
  };
  EXPECT_EQ(steps_of(la), steps_of(lb));
}

TEST_F(DataEfficiencyTrain, LogCountsTokensAndLayerTokensAsProcessed) {
  train::TrainOptions quiet;
  quiet.progress = false;
  train::run_training(train::parse_train_config(config("c", 9), "c.json"), quiet);
  double tokens = 0, layer_tokens = 0;
  int steps = 0;
  for (const auto& j : log_of("c")) {
    ASSERT_TRUE(j.contains("tokens") && j.contains("layer_tokens") && j.contains("elapsed_s") && j.contains("train_s"));
    if (!j.contains("loss")) continue;
    const int64_t s = steps++;  // step index of this update
    const int64_t len = std::min<int64_t>(16, std::max<int64_t>(6, (int64_t)std::floor(s / 6.0 * 10 + 6) / 2 * 2));
    const int64_t kept = std::min<int64_t>(len, s >= 7 ? 16 : (int64_t)std::floor(s / 7.0 * 12 + 4) / 2 * 2);
    EXPECT_EQ(j["seq_len"].get<int64_t>(), len) << s;
    EXPECT_EQ(j["kept_tokens"].get<int64_t>(), kept) << s;
    tokens += 2 * 4 * len;
    layer_tokens += 2 * 4 * (2 * len + 2 * kept);
    EXPECT_EQ(j["tokens"].get<double>(), tokens) << s;
    EXPECT_EQ(j["layer_tokens"].get<double>(), layer_tokens) << s;
    EXPECT_GT(j["difficulty"]["vocabularyrarity"].get<int64_t>(), 19);
  }
  EXPECT_EQ(steps, 9);
}

TEST(LayerTokenSchedule, FollowsLayerTokens) {
  optim::LayerTokenSchedule s;
  s.max_lr = 1.f, s.min_lr = 0.1f, s.warmup_layer_tokens = 100, s.total_layer_tokens = 1100;
  EXPECT_FLOAT_EQ(s.at(50), 0.5f);
  EXPECT_FLOAT_EQ(s.at(100), 1.f);
  EXPECT_FLOAT_EQ(s.at(600), 0.55f);  // half-way through the cosine
  EXPECT_FLOAT_EQ(s.at(1100), 0.1f);
  EXPECT_FLOAT_EQ(s.at(5000), 0.1f);
  s.log_warmup = true;
  EXPECT_NEAR(s.at(50), std::log(51.0) / std::log(101.0), 1e-6);
}

TEST_F(DataEfficiencyTrain, BadConfigIsAOneLineErrorFromTheBinary) {
  std::string cfg = config("d", 3);
  cfg.replace(cfg.find("\"seq_per_step\""), 14, "\"seq_per_stepp\"");
  gannet::testing::write(file("bad.json"), cfg);
  const auto [status, err] = gannet::testing::command_status(std::string(GANNET_BINARY) + " train --no-progress -c " +
                                                              file("bad.json") + " 2>&1 1>/dev/null");
  EXPECT_NE(status, 0);
  EXPECT_TRUE(gannet::testing::has(err, "unknown key 'seq_per_stepp' in " + file("bad.json") +
                                            ".data_efficiency.data_routing.random_ltd."
                                "random_ltd_schedule.schedule_config (did you mean 'seq_per_step'?"))
      << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
}
