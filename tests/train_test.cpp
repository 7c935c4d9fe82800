// The training loop end to end on a small synthetic token file: exact resume, checkpoints,
// Ctrl-C, and bad input through the real `gannet` binary.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "gannet/core/rng.h"
#include "gannet/data/token_file.h"
#include "gannet/core/atomic_file.h"
#include "gannet/io/checkpoint.h"
#include "gannet/io/gpt_weights.h"
#include "gannet/io/safetensors.h"
#include "gannet/io/sharded_checkpoint.h"
#include "gannet/train/trainer.h"
#include "checkpoint_tensors.h"
#include "command_output.h"
#include "test_files.h"

using namespace gannet;
namespace fs = std::filesystem;

namespace {
fs::path fresh_dir(const std::string& name) {
  fs::path d = fs::path(::testing::TempDir()) / ("gannet_train_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// A token file with some structure (a noisy repeating pattern) so the loss can fall.
void write_data(const fs::path& dir) {
  Rng rng(7);
  for (auto [name, n] : {std::pair<const char*, int>{"train.tok", 4000}, {"val.tok", 600}}) {
    std::vector<int32_t> t(n);
    for (int i = 0; i < n; ++i) t[i] = rng.uniform() < 0.8f ? (i * 7) % 31 : (int32_t)rng.below(40);
    data::write_token_file((dir / name).string(), t, 40);
  }
}

std::string config_text(const fs::path& data, const fs::path& out, int steps, const std::string& extra = "") {
  return R"({"model": {"vocab_size": 40, "n_ctx": 16, "n_layer": 2, "n_head": 2, "n_embd": 16},
    "data": {"dir": ")" + data.string() + R"("}, "train_micro_batch_size_per_gpu": 4,
    "gradient_accumulation_steps": 2, "train_steps": )" + std::to_string(steps) + R"(,
    "optimizer": {"type": "AdamW", "params": {"lr": 1e-2}},
    "scheduler": {"type": "WarmupCosineLR", "params": {"warmup_num_steps": 2}},
    "eval": {"interval": 3, "batches": 2}, "checkpoint": {"dir": ")" + out.string() + R"(", "interval": 2})" +
         extra + "}";
}

struct CliRun {
  int status;
  std::string err;
};

CliRun run_gannet(const std::string& args) {
  const auto [status, err] =
      gannet::testing::command_status(std::string(GANNET_BINARY) + " " + args + " 2>&1 1>/dev/null");
  return {status, err};
}
}  // namespace

TEST(Train, ResumeEqualsUninterruptedRun) {
  fs::path dir = fresh_dir("resume");
  write_data(dir);
  train::TrainOptions quiet;
  quiet.progress = false;
  auto whole = train::parse_train_config(config_text(dir, dir / "a", 7), "a.json");
  train::TrainResult ra = train::run_training(whole, quiet);
  EXPECT_EQ(ra.steps_done, 7);
  EXPECT_LT(ra.val_loss, std::log(40.0));

  auto split = train::parse_train_config(config_text(dir, dir / "b", 7), "b.json");
  train::TrainOptions first = quiet;
  first.stop_after = 3;
  EXPECT_EQ(train::run_training(split, first).steps_done, 3);
  train::TrainOptions rest = quiet;
  rest.resume = true;
  train::TrainResult rb = train::run_training(split, rest);
  EXPECT_EQ(rb.steps_done, 7);
  EXPECT_EQ(rb.steps_run, 4);
  EXPECT_EQ(gannet::testing::checkpoint_tensors(ra.checkpoint), gannet::testing::checkpoint_tensors(rb.checkpoint));  // bit for bit
  EXPECT_DOUBLE_EQ(ra.val_loss, rb.val_loss);
  // Resuming the finished run runs no step; the command says so instead of a loss of 0.
  EXPECT_EQ(train::run_training(split, rest).steps_run, 0);
  std::ofstream(dir / "b.json") << config_text(dir, dir / "b", 7);
  const std::string out =
      gannet::testing::gannet_output("train --no-progress --resume --config " + (dir / "b.json").string() + " 2>&1");
  EXPECT_NE(out.find("final: step 7, finished before this run, validation loss"), std::string::npos) << out;
}

TEST(Train, ShardedCheckpointInOneProcessResumesExactly) {
  // checkpoint.sharded in one process: one shard and a manifest; resumed, the run equals the
  // uninterrupted whole-file run bit for bit, and earlier saves' shards are gone.
  fs::path dir = fresh_dir("sharded");
  write_data(dir);
  train::TrainOptions quiet;
  quiet.progress = false;
  train::TrainResult ra = train::run_training(train::parse_train_config(config_text(dir, dir / "a", 7), "a.json"), quiet);
  std::string text = config_text(dir, dir / "b", 7);
  const std::string ck = R"("interval": 2})";
  text.replace(text.find(ck), ck.size(), R"("interval": 2, "sharded": true})");
  auto split = train::parse_train_config(text, "b.json");
  ASSERT_EQ(split.checkpoint_sharded, std::optional<bool>(true));
  train::TrainOptions first = quiet, rest = quiet;
  first.stop_after = 3;
  rest.resume = true;
  EXPECT_EQ(train::run_training(split, first).checkpoint, (dir / "b" / "checkpoint" / "manifest.json").string());
  train::TrainResult rb = train::run_training(split, rest);
  EXPECT_EQ(rb.steps_done, 7);
  EXPECT_FALSE(fs::exists(dir / "b" / "checkpoint.safetensors"));
  EXPECT_EQ(train::find_checkpoint(split), rb.checkpoint);
  int saves = 0;
  for (const auto& e : fs::directory_iterator(dir / "b" / "checkpoint")) saves += e.is_directory();
  EXPECT_EQ(saves, 1);  // saves at steps 2, 3, 4, 6 and 7; only the last one's shards remain

  io::SafeTensors whole = io::SafeTensors::open(ra.checkpoint);
  io::ShardedCheckpoint sharded = io::read_sharded_checkpoint(rb.checkpoint);
  ASSERT_EQ(sharded.manifest.shards.size(), 1u);
  EXPECT_EQ(sharded.manifest.state.step, 7);
  EXPECT_EQ(sharded.tensors.size(), whole.names().size());
  for (const auto& n : whole.names()) {
    ASSERT_TRUE(sharded.tensors.count(n)) << n;
    Tensor a = whole.get(n), b = sharded.tensors.at(n);
    ASSERT_EQ(a.shape(), b.shape()) << n;
    EXPECT_EQ(std::vector<float>(a.f32(), a.f32() + a.numel()), std::vector<float>(b.f32(), b.f32() + b.numel())) << n;
  }
  EXPECT_DOUBLE_EQ(ra.val_loss, rb.val_loss);
  // The model readers take the manifest or its directory.
  for (const fs::path& p : {dir / "b" / "checkpoint", dir / "b" / "checkpoint" / "manifest.json"}) {
    io::GptWeights w = io::read_gpt_weights(p.string());
    EXPECT_EQ(w.config, split.model);
    const Tensor& t = w.at("h.1.mlp.c_fc.weight", {64, 16});
    Tensor ref = whole.get("h.1.mlp.c_fc.weight");
    EXPECT_EQ(std::vector<float>(t.f32(), t.f32() + t.numel()), std::vector<float>(ref.f32(), ref.f32() + ref.numel()));
    models::Gpt m(io::read_checkpoint_config(p.string()));
    io::load_checkpoint(p.string(), m, nullptr, nullptr);
  }
  // A newer whole-file checkpoint is what --resume takes.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  fs::copy_file(ra.checkpoint, train::checkpoint_path(split));
  EXPECT_EQ(train::find_checkpoint(split), train::checkpoint_path(split));
}

TEST(Train, MoeResumeEqualsUninterruptedRunAndLogsRouting) {
  fs::path dir = fresh_dir("moe");
  write_data(dir);
  auto moe_config = [&](const fs::path& out) {
    std::string text = config_text(dir, out, 6);
    const std::string model = R"("n_embd": 16})";
    text.replace(text.find(model), model.size(),
                 R"("n_embd": 16, "moe": {"num_experts": 4, "k": 2, "capacity_factor": 1.0, "min_capacity": 1,
                     "noisy_gate_policy": "Jitter", "router_z_loss_coeff": 0.001}})");
    return train::parse_train_config(text, "moe.json");
  };
  train::TrainOptions quiet;
  quiet.progress = false;
  train::TrainResult ra = train::run_training(moe_config(dir / "a"), quiet);
  train::TrainOptions first = quiet, rest = quiet;
  first.stop_after = 2;
  rest.resume = true;
  auto split = moe_config(dir / "b");
  train::run_training(split, first);
  train::TrainResult rb = train::run_training(split, rest);
  EXPECT_EQ(gannet::testing::checkpoint_tensors(ra.checkpoint), gannet::testing::checkpoint_tensors(rb.checkpoint));  // routing noise and RTS resume too
  EXPECT_DOUBLE_EQ(ra.val_loss, rb.val_loss);
  // Every step's log line carries the MoE layer's routing statistics.
  std::ifstream in(dir / "a" / "metrics.jsonl");
  std::string line;
  int steps = 0;
  while (std::getline(in, line)) {
    nlohmann::json j = nlohmann::json::parse(line);
    if (!j.contains("loss")) continue;
    ++steps;
    ASSERT_TRUE(j.contains("moe")) << line;
    const auto& l = j["moe"]["layers"].at(0);
    EXPECT_EQ(l["block"].get<int>(), 1);
    double load = 0;
    for (double v : l["load"]) load += v;
    EXPECT_NEAR(load, 1.0, 1e-9);
    EXPECT_EQ(l["load"].size(), 4u);
    EXPECT_GE(l["dropped"].get<double>(), 0.0);
    EXPECT_LE(l["dropped"].get<double>(), 1.0);
    EXPECT_GE(l["balance_loss"].get<double>(), 0.5);  // 1 when balanced, up to E / k
    EXPECT_GT(l["z_loss"].get<double>(), 0.0);
    EXPECT_GT(j["moe"]["aux_loss"].get<double>(), 0.0);
  }
  EXPECT_EQ(steps, 6);
}

TEST(Train, CheckpointRejectsAnotherModel) {
  fs::path dir = fresh_dir("mismatch");
  write_data(dir);
  train::TrainOptions quiet;
  quiet.progress = false;
  auto cfg = train::parse_train_config(config_text(dir, dir / "out", 2), "c.json");
  std::string ckpt = train::run_training(cfg, quiet).checkpoint;
  models::GptConfig other = cfg.model;
  other.n_embd = 32;
  models::Gpt m(other);
  try {
    io::load_checkpoint(ckpt, m, nullptr, nullptr);
    FAIL() << "loaded a checkpoint into a model of another shape";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not match"), std::string::npos) << e.what();
  }
  // Truncated checkpoint: a clear error naming the file.
  std::string bytes = read_file(ckpt);
  std::string cut = (dir / "cut.safetensors").string();
  write_file_atomic(cut, bytes.substr(0, bytes.size() / 2));
  models::Gpt same(cfg.model);
  try {
    io::load_checkpoint(cut, same, nullptr, nullptr);
    FAIL() << "loaded a truncated checkpoint";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cut.safetensors"), std::string::npos) << e.what();
  }
}

TEST(Train, ConfigErrorsAreOneLine) {
  fs::path dir = fresh_dir("cfgerr");
  EXPECT_THROW(train::parse_train_config("{\"model\": {\"n_layer\": 2,}}", "x.json"), Error);
  try {
    train::parse_train_config(R"({"train_stepz": 3})", "x.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("train_stepz"), std::string::npos) << e.what();
  }
  EXPECT_THROW(train::parse_train_config(R"({"optimizer": {"type": "Lamb"}})", "x.json"), Error);
  EXPECT_THROW(train::parse_train_config(R"({"train_batch_size": 5})", "x.json"), Error);
  EXPECT_THROW(train::parse_train_config(R"({"model": {"n_embd": 30, "n_head": 4}})", "x.json"), Error);
}

TEST(Train, CliErrorsAndNothingOverwritten) {
  fs::path dir = fresh_dir("cli");
  write_data(dir);
  write_file_atomic((dir / "ok.json").string(), config_text(dir, dir / "out", 2));
  CliRun ok = run_gannet("train --no-progress --sample-prompt '' --config " + (dir / "ok.json").string());
  ASSERT_EQ(ok.status, 0) << ok.err;
  std::string ckpt = (dir / "out" / "checkpoint.safetensors").string();
  std::string before = read_file(ckpt);

  // A config whose model does not match the checkpoint: --resume fails, the checkpoint stays.
  std::string bigger = config_text(dir, dir / "out", 4);
  bigger.replace(bigger.find("\"n_embd\": 16"), 12, "\"n_embd\": 32");
  write_file_atomic((dir / "bigger.json").string(), bigger);
  CliRun r = run_gannet("train --no-progress --resume --config " + (dir / "bigger.json").string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("does not match"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(read_file(ckpt), before);

  write_file_atomic((dir / "bad.json").string(), "{\"model\": ");
  r = run_gannet("train --config " + (dir / "bad.json").string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("parse error"), std::string::npos) << r.err;

  r = run_gannet("eval -m " + ckpt + " -d " + (dir / "missing.tok").string());
  EXPECT_NE(r.status, 0);
  r = run_gannet("train --config " + (dir / "ok.json").string() + " --frobnicate");
  EXPECT_NE(r.status, 0);

  fs::remove(dir / "train.tok");
  r = run_gannet("train --no-progress --config " + (dir / "ok.json").string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("gannet data prepare"), std::string::npos) << r.err;
  EXPECT_EQ(read_file(ckpt), before);

  // A corrupt token file.
  write_data(dir);
  write_file_atomic((dir / "val.tok").string(), "GNTOK001 garbage");
  r = run_gannet("eval -m " + ckpt + " -d " + (dir / "val.tok").string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("val.tok"), std::string::npos) << r.err;
}

TEST(Train, ValidationFileIsCheckedAgainstTheVocabularyBeforeTheFirstStep) {
  fs::path dir = fresh_dir("badval");
  write_data(dir);
  train::TrainOptions quiet;
  quiet.progress = false;
  const std::string val = (dir / "val.tok").string(), train = (dir / "train.tok").string();
  auto cfg = train::parse_train_config(config_text(dir, dir / "out", 4), "c.json");
  data::write_token_file(val, std::vector<int32_t>(600, 45), 50);  // the model's vocabulary is 40
  EXPECT_EQ(gannet::testing::message_of([&] { train::run_training(cfg, quiet); }),
            val + " has vocabulary 50, more than model.vocab_size 40");
  data::write_token_file(val, std::vector<int32_t>(600, 3), 30);  // fits, but another tokenizer's
  EXPECT_EQ(gannet::testing::message_of([&] { train::run_training(cfg, quiet); }),
            val + " has vocabulary 30, " + train + " has 40: they were not made with the same tokenizer");
  EXPECT_FALSE(fs::exists(dir / "out"));  // found before any step, log or checkpoint
}

TEST(Train, InterruptWritesACheckpoint) {
  fs::path dir = fresh_dir("sigint");
  write_data(dir);
  write_file_atomic((dir / "long.json").string(),
                        config_text(dir, dir / "out", 100000, R"(, "seed": 5)"));
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    freopen("/dev/null", "w", stderr);
    execl(GANNET_BINARY, GANNET_BINARY, "train", "--no-progress", "--config", (dir / "long.json").c_str(),
          (char*)nullptr);
    _exit(127);
  }
  // Wait until a few steps are logged, then interrupt.
  fs::path metrics = dir / "out" / "metrics.jsonl";
  for (int i = 0; i < 600; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (fs::exists(metrics) && fs::file_size(metrics) > 400) break;
  }
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
  io::TrainState st;
  models::Gpt m(io::read_checkpoint_config((dir / "out" / "checkpoint.safetensors").string()));
  io::load_checkpoint((dir / "out" / "checkpoint.safetensors").string(), m, nullptr, &st);
  EXPECT_GT(st.step, 0);
  EXPECT_LT(st.step, 100000);
}
