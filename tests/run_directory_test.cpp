// A training run's directory: temporaries of killed runs removed at the start, the metrics log cut
// back to the checkpoint on --resume (so a resumed run logs what an uninterrupted one does), write
// errors on the log (a full disk) as one-line errors without half lines, and a new run refusing to
// start over an earlier one. Tiny models on a small synthetic token file, as in train_test.cpp.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "gannet/core/atomic_file.h"
#include "gannet/core/rng.h"
#include "gannet/data/token_file.h"
#include "gannet/io/checkpoint.h"
#include "gannet/train/metrics_log.h"
#include "gannet/train/run_directory.h"
#include "gannet/train/trainer.h"
#include "command_output.h"
#include "test_files.h"

using namespace gannet;
namespace fs = std::filesystem;
using gannet::testing::has;

namespace {

class RunDirectory : public gannet::testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    Rng rng(7);
    for (auto [name, n] : {std::pair<const char*, int>{"train.tok", 4000}, {"val.tok", 600}}) {
      std::vector<int32_t> t(n);
      for (int i = 0; i < n; ++i) t[i] = rng.uniform() < 0.8f ? (i * 7) % 31 : (int32_t)rng.below(40);
      data::write_token_file((dir_ / name).string(), t, 40);
    }
    quiet_.progress = false;
  }

  // train_test.cpp's tiny GPT: `steps` steps, validation every 3, a checkpoint every `interval`.
  std::string config_text(const std::string& out, int steps, int interval = 2) const {
    return R"({"model": {"vocab_size": 40, "n_ctx": 16, "n_layer": 2, "n_head": 2, "n_embd": 16},
      "data": {"dir": ")" + dir_.string() + R"("}, "train_micro_batch_size_per_gpu": 4,
      "gradient_accumulation_steps": 2, "train_steps": )" + std::to_string(steps) + R"(,
      "optimizer": {"type": "AdamW", "params": {"lr": 1e-2}},
      "scheduler": {"type": "WarmupCosineLR", "params": {"warmup_num_steps": 2}},
      "eval": {"interval": 3, "batches": 2}, "checkpoint": {"dir": ")" + file(out) + R"(", "interval": )" +
           std::to_string(interval) + "}, \"threads\": 1}";
  }
  train::TrainConfig config(const std::string& out, int steps, int interval = 2) const {
    return train::parse_train_config(config_text(out, steps, interval), out + ".json");
  }
  // The config as a file, for the CLI.
  std::string config_file(const std::string& out, int steps, int interval = 2) const {
    gannet::testing::write(file(out + ".json"), config_text(out, steps, interval));
    return file(out + ".json");
  }

  // `gannet train` with these arguments: the exit status and stderr.
  static std::pair<int, std::string> gannet_train(const std::string& args) {
    return gannet::testing::command_status(str(GANNET_BINARY, " train --no-progress --sample-prompt '' ", args, " 2>&1 1>/dev/null"));
  }

  // The log's lines without the fields that measure time or memory, which differ between runs.
  std::vector<nlohmann::json> logged(const std::string& out) const {
    std::vector<nlohmann::json> lines;
    std::ifstream in(fs::path(file(out)) / "metrics.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      nlohmann::json j = nlohmann::json::parse(line);
      for (const char* k : {"elapsed_s", "train_s", "tokens_per_s", "peak_bytes"}) j.erase(k);
      lines.push_back(j);
    }
    return lines;
  }

  train::TrainOptions quiet_;
};

// The id of a process that has ended.
long dead_pid() {
  pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  return (long)child;
}

int count_lines(const std::string& text) { return (int)std::count(text.begin(), text.end(), '\n'); }

// The lines of `err` that are errors (the run's progress notes on stderr left out).
std::vector<std::string> error_lines(const std::string& err) {
  std::vector<std::string> out;
  std::istringstream in(err);
  for (std::string line; std::getline(in, line);)
    if (line.starts_with("gannet: error:")) out.push_back(line);
  return out;
}

}  // namespace

TEST_F(RunDirectory, StaleTemporariesAreRemovedAtTheStart) {
  // What kill -9 during saves leaves: the temporaries of the whole checkpoint, the manifest and a
  // log plot of processes that have ended; one of a live process (the parent: this process's own
  // temporary is the one it writes) is kept.
  const long dead = dead_pid(), live = (long)::getppid();
  fs::create_directories(dir_ / "out" / "checkpoint");
  const std::vector<fs::path> stale = {dir_ / "out" / str("checkpoint.safetensors.tmp.", dead),
                                       dir_ / "out" / "checkpoint" / str("manifest.json.tmp.", dead),
                                       dir_ / "out" / str("loss.svg.tmp.", dead)};
  const fs::path kept = dir_ / "out" / str("checkpoint.safetensors.tmp.", live);
  for (const fs::path& p : stale) gannet::testing::write(p.string(), "partial");
  gannet::testing::write(kept.string(), "partial");
  train::TrainResult r = train::run_training(config("out", 2), quiet_);
  EXPECT_EQ(r.steps_done, 2);
  for (const fs::path& p : stale) EXPECT_FALSE(fs::exists(p)) << p;
  EXPECT_TRUE(fs::exists(kept));

  // Through the CLI: said on stderr, once; under --resume too.
  gannet::testing::write(stale[0].string(), "partial");
  auto [rc, err] = gannet_train("--resume --config " + config_file("out", 2));
  EXPECT_EQ(rc, 0) << err;
  EXPECT_TRUE(has(err, "removed the temporary files of a killed run: " + stale[0].string())) << err;
  EXPECT_FALSE(fs::exists(stale[0]));
}

TEST_F(RunDirectory, ResumeCutsTheLogBackToTheCheckpoint) {
  // The uninterrupted run.
  train::run_training(config("whole", 7), quiet_);
  const std::vector<nlohmann::json> whole = logged("whole");
  ASSERT_EQ(whole.size(), 7u + 2u + 1u);  // 7 steps, validations at 3 and 6, the final one

  // A run killed in step 6 after its checkpoint at step 4: its log reaches step 5 and half of 6.
  const train::TrainConfig cfg = config("killed", 7);
  train::TrainOptions first = quiet_, more = quiet_;
  first.stop_after = 4;
  more.resume = true;
  more.stop_after = 1;
  ASSERT_EQ(train::run_training(cfg, first).steps_done, 4);
  const fs::path ckpt = train::checkpoint_path(cfg), at4 = dir_ / "at4.safetensors";
  fs::copy_file(ckpt, at4);
  ASSERT_EQ(train::run_training(cfg, more).steps_done, 5);
  fs::copy_file(at4, ckpt, fs::copy_options::overwrite_existing);
  const fs::path log = dir_ / "killed" / "metrics.jsonl";
  { std::ofstream(log, std::ios::app) << R"({"step": 6, "loss": 3.1, "lr)"; }
  const std::string before = read_file(log.string());
  ASSERT_EQ(count_lines(before), 5 + 1);  // steps 1-5 and the validation at 3, then the half line

  // Resumed: the lines of step 5 and the half line go; the log equals the uninterrupted run's.
  train::TrainOptions rest = quiet_;
  rest.resume = true;
  EXPECT_EQ(train::run_training(cfg, rest).steps_done, 7);
  EXPECT_EQ(logged("killed"), whole);

  // Resuming a finished run writes its final validation again, in place of the old one.
  EXPECT_EQ(train::run_training(cfg, rest).steps_done, 7);
  EXPECT_EQ(logged("killed"), whole);
}

TEST_F(RunDirectory, CutMetricsLogKeepsTheClockOfTheCheckpointStep) {
  const std::string log = file("metrics.jsonl");
  gannet::testing::write(log, R"({"step": 1, "loss": 2, "elapsed_s": 1.5, "train_s": 1.0}
{"step": 2, "loss": 1, "elapsed_s": 3.0, "train_s": 2.0}
{"step": 2, "val_loss": 1, "elapsed_s": 3.5, "train_s": 2.0}
not json
{"step": 3, "loss": 1, "elapsed_s": 4.5, "train_s": 3.0}
{"step": 2, "loss": 9}
{"ste)");
  train::LogCut cut = train::cut_metrics_log(log, 2);
  EXPECT_EQ(cut.lines_removed, 2);  // everything from the first line past step 2
  EXPECT_TRUE(cut.partial_line);
  EXPECT_DOUBLE_EQ(cut.clock.elapsed_s, 3.5);
  EXPECT_DOUBLE_EQ(cut.clock.train_s, 2.0);
  EXPECT_EQ(read_file(log), R"({"step": 1, "loss": 2, "elapsed_s": 1.5, "train_s": 1.0}
{"step": 2, "loss": 1, "elapsed_s": 3.0, "train_s": 2.0}
{"step": 2, "val_loss": 1, "elapsed_s": 3.5, "train_s": 2.0}
not json
)");
  cut = train::cut_metrics_log(log, 2);  // nothing more to cut
  EXPECT_EQ(cut.lines_removed, 0);
  EXPECT_FALSE(cut.partial_line);
  EXPECT_EQ(count_lines(read_file(log)), 4);
  // A missing log stays missing.
  cut = train::cut_metrics_log(file("none.jsonl"), 2);
  EXPECT_FALSE(fs::exists(file("none.jsonl")));
}

TEST_F(RunDirectory, KilledRunResumedLogsEveryStepOnce) {
  // kill -9 once the log has steps after the newest checkpoint (the process is stopped to look, at
  // any point of a step or a save), then --resume: every step is logged once, in order, no line is
  // broken, and no temporary is left.
  const std::string cfg = config_file("out", 100000, 5);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    freopen("/dev/null", "w", stderr);
    execl(GANNET_BINARY, GANNET_BINARY, "train", "--no-progress", "--config", cfg.c_str(), (char*)nullptr);
    _exit(127);
  }
  const std::string log = (dir_ / "out" / "metrics.jsonl").string();
  const std::string ckpt = (dir_ / "out" / "checkpoint.safetensors").string();
  bool past_checkpoint = false;
  for (int i = 0; i < 500 && !past_checkpoint; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    kill(pid, SIGSTOP);
    int status = 0;
    waitpid(pid, &status, WUNTRACED);
    if (fs::exists(ckpt)) {
      io::TrainState st;
      models::Gpt m(io::read_checkpoint_config(ckpt));
      io::load_checkpoint(ckpt, m, nullptr, &st);
      const std::string text = read_file(log);
      const size_t end = text.rfind('\n'), begin = text.rfind('\n', end - 1);
      const nlohmann::json last = nlohmann::json::parse(text.substr(begin + 1, end - begin - 1));
      past_checkpoint = st.step >= 5 && last["step"].get<int64_t>() > st.step;
    }
    if (!past_checkpoint) kill(pid, SIGCONT);
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  ASSERT_TRUE(past_checkpoint);
  auto [rc, err] = gannet_train("--resume --stop-after 5 --config " + cfg);
  ASSERT_EQ(rc, 0) << err;
  EXPECT_TRUE(has(err, "metrics.jsonl cut back to step ")) << err;
  int64_t expected = 1;
  for (const nlohmann::json& j : logged("out")) {
    if (j.contains("loss")) {
      EXPECT_EQ(j["step"].get<int64_t>(), expected++) << j.dump();
    }
  }
  EXPECT_GT(expected, 10);  // resumed from step 5 or later, for 5 more steps
  for (const auto& e : fs::recursive_directory_iterator(dir_ / "out"))
    EXPECT_FALSE(has(e.path().filename().string(), ".tmp.")) << e.path();
}

TEST_F(RunDirectory, LogWriteErrorIsOneLineAndNonZero) {
  // A full disk: the log is /dev/full.
  fs::create_directories(dir_ / "full");
  fs::create_symlink("/dev/full", dir_ / "full" / "metrics.jsonl");
  auto [rc, err] = gannet_train("--config " + config_file("full", 3));
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(error_lines(err), std::vector<std::string>{"gannet: error: cannot write " +
                                                       (dir_ / "full" / "metrics.jsonl").string() +
                                                       ": No space left on device"})
      << err;
  EXPECT_FALSE(fs::exists(dir_ / "full" / "checkpoint.safetensors"));
}

TEST_F(RunDirectory, LogWriteErrorLeavesNoHalfLine) {
  // A file size limit that a log line crosses: the part of the line that was written is cut again.
  constexpr rlim_t kLimit = 3000;
  const std::string cfg = config_file("limit", 200, 0);
  const std::string err_path = file("stderr.txt");
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    FILE* e = freopen(err_path.c_str(), "w", stderr);
    (void)e;
    signal(SIGXFSZ, SIG_IGN);  // a write past the limit then fails with EFBIG
    rlimit lim{kLimit, kLimit};
    setrlimit(RLIMIT_FSIZE, &lim);
    execl(GANNET_BINARY, GANNET_BINARY, "train", "--no-progress", "--config", cfg.c_str(), (char*)nullptr);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  const std::string log = (dir_ / "limit" / "metrics.jsonl").string();
  const std::string err = read_file(err_path);
  EXPECT_EQ(error_lines(err), std::vector<std::string>{"gannet: error: cannot write " + log + ": File too large"})
      << err;
  const std::string text = read_file(log);
  ASSERT_FALSE(text.empty());
  EXPECT_LE(text.size(), kLimit);
  EXPECT_GT(text.size(), kLimit - 400);  // the log did reach the limit: a line was cut
  EXPECT_EQ(text.back(), '\n');
  EXPECT_NO_THROW(logged("limit"));  // every line whole
}

TEST_F(RunDirectory, NewRunRefusesToStartOverAnEarlierOne) {
  const std::string cfg = config_file("out", 2);
  ASSERT_EQ(gannet_train("--config " + cfg).first, 0);
  const std::string log = (dir_ / "out" / "metrics.jsonl").string();
  const std::string ckpt = (dir_ / "out" / "checkpoint.safetensors").string();
  const std::string log_before = read_file(log), ckpt_before = read_file(ckpt);
  auto [rc, err] = gannet_train("--config " + cfg);
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(err, "gannet: error: " + file("out") + " already holds a run (metrics.jsonl, checkpoint.safetensors): pass "
                 "--resume to continue it, or remove or rename " + file("out") + " to start a new one\n");
  EXPECT_EQ(read_file(log), log_before);
  EXPECT_EQ(read_file(ckpt), ckpt_before);

  // A log alone (a run killed before its first checkpoint) is an earlier run too; an empty log,
  // or a directory with other files, is not.
  fs::remove(ckpt);
  EXPECT_EQ(train::earlier_run_files(config("out", 2)), std::vector<std::string>{"metrics.jsonl"});
  EXPECT_THROW(train::run_training(config("out", 2), quiet_), Error);
  EXPECT_EQ(read_file(log), log_before);
  gannet::testing::write(log, "");
  gannet::testing::write(file("out/notes.txt"), "mine");
  EXPECT_TRUE(train::earlier_run_files(config("out", 2)).empty());
  EXPECT_EQ(train::run_training(config("out", 2), quiet_).steps_done, 2);
  EXPECT_EQ(read_file(file("out/notes.txt")), "mine");
}

TEST_F(RunDirectory, UnderMpirunTheLeadRankRefusesAndTheJobEnds) {
  // Two ranks: rank 0 alone writes the log; a new run over it is refused by rank 0, and the job
  // ends at once instead of leaving rank 1 waiting in a collective.
  const std::string cfg = config_file("out", 2);
  const std::string mpirun = str("env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 ",
                                 "timeout 120 ", GANNET_MPIRUN, " -np 2 --oversubscribe ", GANNET_BINARY,
                                 " train --no-progress --sample-prompt '' --config ", cfg, " 2>&1");
  auto run = [&] { return gannet::testing::command_status(mpirun); };
  auto [rc, out] = run();
  ASSERT_EQ(rc, 0) << out;
  const std::string log = read_file((dir_ / "out" / "metrics.jsonl").string());
  EXPECT_EQ(logged("out").size(), 2u + 1u);  // steps 1 and 2 and the final validation, once each
  auto [rc2, out2] = run();
  EXPECT_NE(rc2, 0);
  EXPECT_NE(rc2, 124) << "timed out";
  EXPECT_EQ(error_lines(out2).size(), 1u) << out2;
  EXPECT_TRUE(has(out2, "already holds a run")) << out2;
  EXPECT_EQ(read_file((dir_ / "out" / "metrics.jsonl").string()), log);
}
