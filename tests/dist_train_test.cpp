// Data-parallel training under mpirun against one process: N ranks with gradient accumulation A
// compute what one process computes with accumulation N x A (the same micro-batches, in the same
// order). Losses, weights and AdamW moments are compared after several steps for plain data
// parallelism and ZeRO stages 1 and 2, on 2 and 4 processes; also the bytes each collective moved
// against the analytical count, the optimizer memory per rank, a checkpoint resumed on another
// layout, and a rank that dies.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "gannet/core/atomic_file.h"
#include "gannet/core/rng.h"
#include "gannet/data/token_file.h"
#include "gannet/io/safetensors.h"
#include "gannet/io/sharded_checkpoint.h"
#include "gannet/train/train_config.h"
#include "gannet/train/trainer.h"
#include "command_output.h"
#include "test_files.h"

using namespace gannet;
namespace fs = std::filesystem;

namespace {

constexpr const char* kMpiEnv = "env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 ";

class DistTrain : public gannet::testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    Rng rng(11);
    for (auto [name, n] : {std::pair<const char*, int>{"train.tok", 6000}, {"val.tok", 600}}) {
      std::vector<int32_t> t(n);
      for (int i = 0; i < n; ++i) t[i] = rng.uniform() < 0.8f ? (i * 5) % 29 : (int32_t)rng.below(40);
      data::write_token_file((dir_ / name).string(), t, 40);
    }
  }

  // A config for `out`, with micro-batch 4, accumulation `accum`, and `extra` keys.
  std::string config(const std::string& out, int accum, int steps, const std::string& extra = "") {
    std::string path = file(out + ".json");
    gannet::testing::write(path, R"({"model": {"vocab_size": )" + std::to_string(vocab_) +
                                     R"(, "n_ctx": 16, "n_layer": 3, "n_head": 2, "n_embd": 16)" + moe_ + R"(},
      "data": {"dir": ")" + dir_.string() + R"("}, "train_micro_batch_size_per_gpu": 4,
      "gradient_accumulation_steps": )" + std::to_string(accum) + R"(, "train_steps": )" + std::to_string(steps) + R"(,
      "optimizer": {"type": "AdamW", "params": {"lr": 1e-2}}, "gradient_clipping": 0.5,
      "scheduler": {"type": "WarmupCosineLR", "params": {"warmup_num_steps": 2}},
      "eval": {"interval": 0, "batches": 2}, "checkpoint": {"dir": ")" + file(out) + R"(", "interval": 0)" + checkpoint_ + R"(},
      "threads": 1)" + extra + "}");
    return path;
  }

  // A moe block for the model (empty: dense): block 1 of 3 becomes an MoE layer.
  std::string moe_;
  int vocab_ = 40;  // model.vocab_size (the data's vocabulary is 40)
  // More keys of the checkpoint block.
  std::string checkpoint_;
  void use_moe() {
    moe_ = R"(, "moe": {"num_experts": 4, "k": 2, "capacity_factor": 1.0, "min_capacity": 1,
                        "noisy_gate_policy": "Jitter", "router_z_loss_coeff": 0.001})";
  }

  // Runs `gannet train` on np processes (0: without mpirun); the exit status and stderr.
  std::pair<int, std::string> train(int np, const std::string& cfg, const std::string& flags = "") {
    std::string cmd = np == 0 ? str("timeout 240 ", GANNET_BINARY)
                              : str(kMpiEnv, "timeout 240 ", GANNET_MPIRUN, " -np ", np, " --oversubscribe ", GANNET_BINARY);
    return run(cmd + " train --no-progress --config " + cfg + " " + flags);
  }

  static std::pair<int, std::string> run(const std::string& cmd) {
    return gannet::testing::command_status(cmd + " 2>&1");
  }

  // The validation loss after the last step.
  double final_val_loss(const std::string& out) {
    std::ifstream in(fs::path(file(out)) / "metrics.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      nlohmann::json j = nlohmann::json::parse(line);
      if (j.contains("final")) return j["val_loss"].get<double>();
    }
    ADD_FAILURE() << "no final validation in " << out;
    return 0;
  }

  std::vector<nlohmann::json> steps_of(const std::string& out) {
    std::ifstream in(fs::path(file(out)) / "metrics.jsonl");
    std::vector<nlohmann::json> v;
    std::string line;
    while (std::getline(in, line)) {
      nlohmann::json j = nlohmann::json::parse(line);
      if (j.contains("loss")) v.push_back(j);
    }
    return v;
  }

  // The whole tensors of the checkpoint that --resume would read in `out` (whole file or sharded).
  std::map<std::string, Tensor> tensors_of(const std::string& out) {
    train::TrainConfig c;
    c.out_dir = file(out);
    const std::string path = train::find_checkpoint(c);
    EXPECT_FALSE(path.empty()) << "no checkpoint in " << out;
    if (io::is_sharded_checkpoint(path)) return io::read_sharded_checkpoint(path).tensors;
    io::SafeTensors f = io::SafeTensors::open(path);
    std::map<std::string, Tensor> t;
    for (const auto& n : f.names()) t[n] = f.get(n);
    return t;
  }

  // Largest relative L2 distance ||a - b|| / ||b|| over the tensors of two checkpoints (weights and
  // AdamW moments).
  double max_rel_diff(const std::string& a, const std::string& b) {
    std::map<std::string, Tensor> fa = tensors_of(a), fb = tensors_of(b);
    std::vector<std::string> na, nb;
    for (const auto& [n, t] : fa) na.push_back(n);
    for (const auto& [n, t] : fb) nb.push_back(n);
    EXPECT_EQ(na, nb);
    double worst = 0;
    for (const auto& n : nb) {
      if (!fa.count(n)) continue;
      Tensor ta = fa.at(n), tb = fb.at(n);
      EXPECT_EQ(ta.numel(), tb.numel()) << n;
      double d = 0, ref = 0;
      // The key bias (the middle third of c_attn.bias) gets no gradient in exact arithmetic (softmax
      // ignores a shift shared by all keys): its values and moments are rounding noise that AdamW
      // amplifies, so the comparison leaves it out.
      const bool qkv_bias = n.size() >= 16 && n.compare(n.size() - 16, 16, "attn.c_attn.bias") == 0;
      const int64_t C = tb.numel() / 3;
      for (int64_t i = 0; i < tb.numel() && i < ta.numel(); ++i) {
        if (qkv_bias && i >= C && i < 2 * C) continue;
        d += std::pow((double)ta.f32()[i] - tb.f32()[i], 2);
        ref += std::pow((double)tb.f32()[i], 2);
      }
      const double rel = std::sqrt(d / std::max(ref, 1e-30));
      if (rel > worst) std::printf("  %s: relative distance %.3g\n", n.c_str(), rel);
      worst = std::max(worst, rel);
    }
    return worst;
  }
};

// Float sums in another order (each rank adds its own micro-batches first, the all-reduce then adds
// the ranks' sums) move the weights by a few ulps per step; AdamW's normalization magnifies that
// where a gradient is near zero (worst seen: 3.3e-6).
constexpr double kTolerance = 2e-5;

struct Layout {
  int np, stage;
  bool moe = false;
  int expert = 1;  // parallel.expert
  int tensor = 1;  // parallel.tensor
  int tile = 0;    // zero_optimization.reduce_bucket_size and allgather_bucket_size (0: the default)
};

class DistTrainLayouts : public DistTrain, public ::testing::WithParamInterface<Layout> {};

TEST_P(DistTrainLayouts, MatchesOneProcess) {
  const Layout l = GetParam();
  if (l.moe) use_moe();
  const int steps = 5, accum = 2;
  auto [rc1, out1] = train(0, config("one", accum * l.np / l.tensor, steps));  // the data-parallel degree
  ASSERT_EQ(rc1, 0) << out1;
  auto [rc2, out2] = train(l.np, config("many", accum, steps,
                                        str(R"(, "zero_optimization": {"stage": )", l.stage,
                                            l.tile ? str(R"(, "reduce_bucket_size": )", l.tile, R"(, "allgather_bucket_size": )", l.tile) : "",
                                            R"(}, "parallel": {"expert": )", l.expert, R"(, "tensor": )", l.tensor, "}")));
  ASSERT_EQ(rc2, 0) << out2;
  auto a = steps_of("one"), b = steps_of("many");
  ASSERT_EQ(a.size(), (size_t)steps);
  ASSERT_EQ(b.size(), (size_t)steps);
  for (int s = 0; s < steps; ++s) {
    EXPECT_NEAR(b[s]["loss"].get<double>(), a[s]["loss"].get<double>(), 1e-5 * a[s]["loss"].get<double>()) << s;
    EXPECT_NEAR(b[s]["grad_norm"].get<double>(), a[s]["grad_norm"].get<double>(), 1e-4 * a[s]["grad_norm"].get<double>());
    EXPECT_EQ(b[s]["tokens"].get<double>(), a[s]["tokens"].get<double>());
  }
  EXPECT_LT(max_rel_diff("many", "one"), kTolerance);
  const double val = final_val_loss("one");
  EXPECT_NEAR(final_val_loss("many"), val, 1e-5 * val);
  if (l.tensor > 1)
    for (const auto& j : b) {
      // Per micro-batch: in each split half of a block, one all-reduce of the activations [N, C]
      // forward and one of their gradient backward; vocabulary parallelism adds the embedding's
      // [N, C] forward, the LM head input's gradient [N, C] backward, and the cross-entropy's row
      // maxima [N] and its sums of exponentials and target logits [2N] forward. Per step, one of
      // the clipping norm of the slices (a double). The validation at the end is not in the step lines.
      ASSERT_TRUE(j.contains("tensor_comm")) << j.dump();
      const int64_t halves = l.moe ? 3 * 2 - 1 : 3 * 2;  // block 1's MLP is the MoE layer, not split
      const int64_t N = 4 * 16, C = 16, t = l.tensor;
      std::vector<int64_t> sizes((size_t)(halves * 2 + 2), N * C * 4);  // bytes of each all-reduce
      sizes.insert(sizes.end(), {N * 4, 2 * N * 4});
      int64_t calls = 1, payload = 8, wire = 8 / t * (t - 1) * 2;
      for (int m = 0; m < accum; ++m)
        for (int64_t bytes : sizes) ++calls, payload += bytes, wire += bytes / t * (t - 1) * 2;
      const auto& ar = j["tensor_comm"]["all_reduce"];
      EXPECT_EQ(ar["calls"].get<int64_t>(), calls);
      EXPECT_EQ(ar["payload_bytes"].get<int64_t>(), payload);
      EXPECT_EQ(ar["wire_bytes"].get<int64_t>(), wire);
    }
  if (l.expert > 1)
    for (const auto& j : b) {
      // The one MoE layer exchanges rows twice forward and twice backward per micro-batch.
      ASSERT_TRUE(j.contains("expert_comm")) << j.dump();
      EXPECT_EQ(j["expert_comm"]["all_to_all"]["calls"].get<int64_t>(), 4 * accum);
      EXPECT_GT(j["expert_comm"]["all_to_all"]["wire_bytes"].get<int64_t>(), 0);
    }
}

INSTANTIATE_TEST_SUITE_P(Layouts, DistTrainLayouts,
                         ::testing::Values(Layout{2, 0}, Layout{2, 1}, Layout{2, 2}, Layout{4, 0}, Layout{4, 1},
                                           Layout{4, 2},
                                           // MoE: data parallel with ZeRO, expert parallel, and both
                                           Layout{4, 2, true, 1}, Layout{2, 0, true, 2}, Layout{2, 2, true, 2},
                                           Layout{4, 1, true, 2}, Layout{4, 2, true, 4},
                                           // tensor parallel, with data parallelism, and TED (all three)
                                           Layout{2, 0, false, 1, 2}, Layout{4, 1, false, 1, 2},
                                           Layout{4, 2, false, 1, 2}, Layout{4, 0, true, 2, 2},
                                           Layout{4, 2, true, 2, 2},
                                           // collectives in tiles of 100 elements (of 10 per rank at N = 4)
                                           Layout{2, 0, false, 1, 1, 100}, Layout{4, 1, false, 1, 1, 100},
                                           Layout{4, 2, false, 1, 1, 100}, Layout{4, 2, true, 2, 2, 100}),
                         [](const auto& info) {
                           return str("np", info.param.np, "_zero", info.param.stage, info.param.moe ? "_moe" : "",
                                      info.param.expert > 1 ? str("_ep", info.param.expert) : "",
                                      info.param.tensor > 1 ? str("_tp", info.param.tensor) : "",
                                      info.param.tile ? str("_tile", info.param.tile) : "");
                         });

TEST_F(DistTrain, BytesPerCollectiveEqualTheAnalyticalCount) {
  // Parameters: wte 40x16, wpe 16x16, per block 2 LN (4x16) + c_attn 16x48+48 + c_proj 16x16+16 +
  // c_fc 16x64+64 + mlp c_proj 64x16+16, ln_f 2x16. Buckets: one per block, one for the rest.
  const int64_t block = 4 * 16 + (16 * 48 + 48) + (16 * 16 + 16) + (16 * 64 + 64) + (64 * 16 + 16);
  const int64_t rest = 40 * 16 + 16 * 16 + 2 * 16;
  for (int stage : {0, 2}) {
    const int N = 4;
    auto [rc, out] = train(N, config(str("z", stage), 2, 2, str(R"(, "zero_optimization": {"stage": )", stage, "}")));
    ASSERT_EQ(rc, 0) << out;
    auto padded = [&](int64_t n) { return (n + N - 1) / N * N; };
    const int64_t grads = 3 * padded(block) + padded(rest);  // elements reduced per reduction
    for (const auto& j : steps_of(str("z", stage))) {
      const auto& c = j["comm"];
      ASSERT_TRUE(j.contains("comm")) << j.dump();
      if (stage == 0) {
        // One all-reduce per bucket on the last micro-batch, plus the loss (8 bytes).
        EXPECT_EQ(c["all_reduce"]["calls"].get<int64_t>(), 4 + 1);
        EXPECT_EQ(c["all_reduce"]["payload_bytes"].get<int64_t>(), grads * 4 + 8);
        EXPECT_EQ(c["all_reduce"]["wire_bytes"].get<int64_t>(), (grads * 4 / N * (N - 1) * 2) + 8 / N * (N - 1) * 2);
        EXPECT_FALSE(c.contains("reduce_scatter"));
      } else {
        // A reduce-scatter per bucket on each of the 2 micro-batches, an all-gather per bucket after
        // the update, and all-reduces for the loss and the norm.
        EXPECT_EQ(c["reduce_scatter"]["calls"].get<int64_t>(), 2 * 4);
        EXPECT_EQ(c["reduce_scatter"]["payload_bytes"].get<int64_t>(), 2 * grads * 4);
        EXPECT_EQ(c["reduce_scatter"]["wire_bytes"].get<int64_t>(), 2 * grads * 4 / N * (N - 1));
        EXPECT_EQ(c["all_gather"]["calls"].get<int64_t>(), 4);
        EXPECT_EQ(c["all_gather"]["payload_bytes"].get<int64_t>(), grads * 4);
        EXPECT_EQ(c["all_reduce"]["payload_bytes"].get<int64_t>(), 8 + 16);  // loss; norm of slices and the rest
      }
      // Optimizer state per rank: all moments with plain data parallelism, a quarter with ZeRO.
      const int64_t params = 3 * block + rest;
      EXPECT_EQ(j["optimizer_bytes"].get<int64_t>(), stage == 0 ? 2 * params * 4 : 2 * grads / N * 4);
    }
  }
}

TEST_F(DistTrain, TiledCollectivesMoveTheSameBytesThroughSmallerStaging) {
  // The buckets of BytesPerCollectiveEqualTheAnalyticalCount, reduced and gathered in tiles of 400
  // elements (100 per rank at N = 4): the same payload in ceil(chunk / 100) calls per bucket, through
  // two staging tiles of 400 (plus two reduce-scatter outputs of 100) instead of two of the largest
  // bucket.
  const int64_t block = 4 * 16 + (16 * 48 + 48) + (16 * 16 + 16) + (16 * 64 + 64) + (64 * 16 + 16);
  const int64_t rest = 40 * 16 + 16 * 16 + 2 * 16;
  const int N = 4;
  auto chunk = [&](int64_t n) { return (n + N - 1) / N; };
  const int64_t grads = N * (3 * chunk(block) + chunk(rest));
  const int64_t tiles = 3 * ((chunk(block) + 99) / 100) + (chunk(rest) + 99) / 100;
  for (int64_t tile : {int64_t{0}, int64_t{400}}) {
    const std::string name = str("tile", tile);
    auto [rc, out] = train(N, config(name, 2, 2, str(R"(, "zero_optimization": {"stage": 2, "reduce_bucket_size": )", tile,
                                                     R"(, "allgather_bucket_size": )", tile, "}")));
    ASSERT_EQ(rc, 0) << out;
    for (const auto& j : steps_of(name)) {
      const auto& c = j["comm"];
      EXPECT_EQ(c["reduce_scatter"]["payload_bytes"].get<int64_t>(), 2 * grads * 4);
      EXPECT_EQ(c["all_gather"]["payload_bytes"].get<int64_t>(), grads * 4);
      EXPECT_EQ(c["reduce_scatter"]["calls"].get<int64_t>(), 2 * (tile ? tiles : 4));
      EXPECT_EQ(c["all_gather"]["calls"].get<int64_t>(), tile ? tiles : 4);
      const int64_t largest = N * chunk(block);
      EXPECT_EQ(j["staging_bytes"].get<int64_t>(), tile ? 2 * (400 + 100) * 4 : 2 * (largest + chunk(block)) * 4);
    }
  }
  EXPECT_LT(max_rel_diff("tile400", "tile0"), 1e-6);
}

TEST_F(DistTrain, CheckpointResumesOnAnotherLayout) {
  // 6 steps in one process, against 3 steps on 2 ranks with ZeRO-2 then 3 more on 4 ranks with ZeRO-1.
  ASSERT_EQ(train(0, config("whole", 4, 6)).first, 0);
  std::string split2 = config("split", 2, 6, R"(, "zero_optimization": {"stage": 2})");
  auto [rc, out] = train(2, split2, "--stop-after 3");
  ASSERT_EQ(rc, 0) << out;
  std::string split4 = config("split", 1, 6, R"(, "zero_optimization": {"stage": 1})");
  auto [rc2, out2] = train(4, split4, "--resume");
  ASSERT_EQ(rc2, 0) << out2;
  EXPECT_LT(max_rel_diff("split", "whole"), kTolerance);
  auto a = steps_of("whole"), b = steps_of("split");
  ASSERT_EQ(b.size(), 6u);
  EXPECT_NEAR(b[5]["loss"].get<double>(), a[5]["loss"].get<double>(), 1e-5 * a[5]["loss"].get<double>());
}

TEST_F(DistTrain, ExpertParallelCheckpointResumesInOneProcess) {
  // 3 steps on 4 ranks (experts over 2 of them, ZeRO-2), then 3 more in one process, against 6 in one.
  use_moe();
  ASSERT_EQ(train(0, config("whole", 4, 6)).first, 0);
  auto [rc, out] = train(4, config("split", 1, 6, R"(, "zero_optimization": {"stage": 2}, "parallel": {"expert": 2})"),
                         "--stop-after 3");
  ASSERT_EQ(rc, 0) << out;
  auto [rc2, out2] = train(0, config("split", 4, 6), "--resume");
  ASSERT_EQ(rc2, 0) << out2;
  EXPECT_LT(max_rel_diff("split", "whole"), kTolerance);
}

TEST_F(DistTrain, ShardedCheckpointResumesOnOtherLayoutsAndEvaluatesInOneProcess) {
  // 3 steps of expert 2 x expert-data 2 (4 ranks, ZeRO-2) with sharded checkpoints (the default on
  // several processes), then 3 more on tensor 2 x data 1 and, from the same checkpoint, in one
  // process: both against 6 steps in one process.
  use_moe();
  ASSERT_EQ(train(0, config("whole", 4, 6)).first, 0);
  const std::string ep = R"(, "zero_optimization": {"stage": 2}, "parallel": {"expert": 2})";
  auto [rc, out] = train(4, config("split", 1, 6, ep), "--stop-after 3");
  ASSERT_EQ(rc, 0) << out;
  checkpoint_ = R"(, "sharded": false)";  // the same run with a whole-file checkpoint
  auto [rcg, outg] = train(4, config("gathered", 1, 6, ep), "--stop-after 3");
  ASSERT_EQ(rcg, 0) << outg;
  checkpoint_.clear();
  const fs::path ck = fs::path(file("split")) / "checkpoint";
  const std::string whole_file = (fs::path(file("gathered")) / "checkpoint.safetensors").string();
  ASSERT_TRUE(fs::exists(ck / "manifest.json"));
  EXPECT_FALSE(fs::exists(fs::path(file("split")) / "checkpoint.safetensors"));

  // Every rank wrote a shard (each holds its ZeRO-2 share of the moments); the manifest names them.
  nlohmann::json m = nlohmann::json::parse(std::ifstream(ck / "manifest.json"));
  EXPECT_EQ(m["layout"]["world"], 4);
  EXPECT_EQ(m["layout"]["expert"], 2);
  EXPECT_EQ(m["layout"]["zero_stage"], 2);
  EXPECT_EQ(m["train_state"]["step"], 3);
  ASSERT_EQ(m["shards"].size(), 4u);
  int64_t shard_bytes = 0, shard_data = 0;
  for (int r = 0; r < 4; ++r) {
    const auto& s = m["shards"][r];
    EXPECT_EQ(s["rank"], r);
    const fs::path f = ck / s["file"].get<std::string>();
    ASSERT_TRUE(fs::exists(f)) << f;
    shard_bytes += (int64_t)fs::file_size(f);
    io::SafeTensors st = io::SafeTensors::open(f.string());
    for (const auto& n : st.names()) shard_data += (int64_t)st.get(n).nbytes();
  }
  std::map<std::string, std::set<std::string>> files_of;
  for (const auto& t : m["tensors"])
    for (const auto& p : t["pieces"]) files_of[t["name"]].insert(p["file"].get<std::string>());
  EXPECT_EQ(files_of["wte.weight"].size(), 1u);                            // replicated: rank 0 writes it
  EXPECT_EQ(files_of["h.1.moe.experts.c_fc.weight"].size(), 2u);           // the two expert ranks' halves
  // The experts' moments: a bucket of 4256 local elements over the expert-data pair: c_fc.weight
  // (2048) lies in the first half, c_fc.bias (2048 to 2176) straddles the two.
  EXPECT_EQ(files_of["optim.m.h.1.moe.experts.c_fc.weight"].size(), 2u);
  EXPECT_EQ(files_of["optim.m.h.1.moe.experts.c_fc.bias"].size(), 4u);
  EXPECT_GE(files_of["optim.v.wte.weight"].size(), 2u);                    // the dense bucket in 4 shards

  // No N-fold duplication: the shards hold exactly the whole checkpoint's data, each element once,
  // and their headers add little.
  io::SafeTensors gathered = io::SafeTensors::open(whole_file);
  int64_t whole_data = 0;
  for (const auto& n : gathered.names()) whole_data += (int64_t)gathered.get(n).nbytes();
  const int64_t whole_bytes = (int64_t)fs::file_size(whole_file);
  std::printf("  shards: %ld bytes (%ld of data) in 4 files; whole file: %ld bytes (%ld of data)\n", (long)shard_bytes,
              (long)shard_data, (long)whole_bytes, (long)whole_data);
  EXPECT_EQ(shard_data, whole_data);
  EXPECT_LT(shard_bytes, whole_bytes * 13 / 10);

  // Evaluated in one process, the manifest (or its directory) gives the whole file's loss.
  const std::string val = (dir_ / "val.tok").string();
  auto [rce, oute] = run(str(GANNET_BINARY, " eval --threads 1 --max-batches 4 -d ", val, " -m ", whole_file));
  ASSERT_EQ(rce, 0) << oute;
  for (const fs::path& p : {ck / "manifest.json", ck}) {
    auto [rcs, outs] = run(str(GANNET_BINARY, " eval --threads 1 --max-batches 4 -d ", val, " -m ", p.string()));
    ASSERT_EQ(rcs, 0) << outs;
    EXPECT_EQ(outs, oute);
  }

  // Resumed on tensor 2 x data 1 (a copy), and in one process.
  fs::copy(file("split"), file("tp"), fs::copy_options::recursive);
  auto [rc2, out2] = train(2, config("tp", 4, 6, R"(, "parallel": {"tensor": 2})"), "--resume");
  ASSERT_EQ(rc2, 0) << out2;
  EXPECT_LT(max_rel_diff("tp", "whole"), kTolerance);
  auto [rc3, out3] = train(0, config("split", 4, 6), "--resume");
  ASSERT_EQ(rc3, 0) << out3;
  EXPECT_TRUE(fs::exists(fs::path(file("split")) / "checkpoint.safetensors"));  // one process: a whole file
  EXPECT_LT(max_rel_diff("split", "whole"), kTolerance);
}

TEST_F(DistTrain, BrokenShardedCheckpointsAreOneLineErrors) {
  // A sharded checkpoint of another model, or with a shard missing: --resume fails naming the
  // problem, and the checkpoint stays.
  use_moe();
  auto [rc, out] = train(2, config("split", 1, 4, R"(, "parallel": {"expert": 2})"), "--stop-after 2");
  ASSERT_EQ(rc, 0) << out;
  const fs::path ck = fs::path(file("split")) / "checkpoint";
  const std::string manifest = read_file((ck / "manifest.json").string());
  moe_.clear();
  auto [rc1, out1] = train(0, config("split", 2, 4), "--resume");
  EXPECT_EQ(rc1, 1);
  EXPECT_TRUE(gannet::testing::has(out1, "does not match the requested model")) << out1;
  use_moe();
  nlohmann::json m = nlohmann::json::parse(manifest);
  fs::remove(ck / m["shards"][1]["file"].get<std::string>());
  auto [rc2, out2] = train(2, config("split", 1, 4, R"(, "parallel": {"expert": 2})"), "--resume");
  EXPECT_NE(rc2, 0);
  EXPECT_TRUE(gannet::testing::has(out2, "missing shard file")) << out2;
  auto [rc3, out3] = run(str(GANNET_BINARY, " eval -d ", (dir_ / "val.tok").string(), " -m ", ck.string()));
  EXPECT_EQ(rc3, 1);
  EXPECT_TRUE(gannet::testing::has(out3, "missing shard file")) << out3;
  EXPECT_EQ(read_file((ck / "manifest.json").string()), manifest);
}

TEST_F(DistTrain, TedCheckpointResumesOnAnotherLayout) {
  // 3 steps of TED (tensor 2 x data 2, experts over 2, ZeRO-1), then 3 on tensor 2 alone, against
  // 6 in one process.
  use_moe();
  ASSERT_EQ(train(0, config("whole", 2, 6)).first, 0);
  auto [rc, out] = train(4, config("split", 1, 6, R"(, "zero_optimization": {"stage": 1}, "parallel": {"tensor": 2, "expert": 2})"),
                         "--stop-after 3");
  ASSERT_EQ(rc, 0) << out;
  auto [rc2, out2] = train(2, config("split", 2, 6, R"(, "parallel": {"tensor": 2})"), "--resume");
  ASSERT_EQ(rc2, 0) << out2;
  EXPECT_LT(max_rel_diff("split", "whole"), kTolerance);
}

TEST_F(DistTrain, DuplicateTokenDroppingMatchesOneProcessAndHalvesTheAllToAll) {
  // Dropless routing without the balance loss (nonlinear in the token fractions, so a mean over
  // half the tokens is not the mean over all) and without router noise (drawn per row): then each
  // tensor rank routing half the rows computes what one process computes.
  moe_ = R"(, "moe": {"num_experts": 4, "k": 2, "drop_tokens": false, "moe_loss_coeff": 0,
                       "router_z_loss_coeff": 0.001})";
  const int steps = 4;
  ASSERT_EQ(train(0, config("one", 4, steps)).first, 0);
  const std::string ted = R"(, "zero_optimization": {"stage": 2}, "parallel": {"tensor": 2, "expert": 2)";
  auto [rc, out] = train(4, config("dtd", 2, steps, ted + R"(, "duplicate_token_dropping": true})"));
  ASSERT_EQ(rc, 0) << out;
  auto [rc2, out2] = train(4, config("dup", 2, steps, ted + "}"));
  ASSERT_EQ(rc2, 0) << out2;
  auto a = steps_of("one"), d = steps_of("dtd"), u = steps_of("dup");
  ASSERT_EQ(d.size(), (size_t)steps);
  ASSERT_EQ(u.size(), (size_t)steps);
  for (int s = 0; s < steps; ++s) {
    EXPECT_NEAR(d[s]["loss"].get<double>(), a[s]["loss"].get<double>(), 1e-5 * a[s]["loss"].get<double>()) << s;
    EXPECT_NEAR(d[s]["grad_norm"].get<double>(), a[s]["grad_norm"].get<double>(), 1e-4 * a[s]["grad_norm"].get<double>());
    // Dropless top-2, summed over the 4 ranks: each routed row goes out and back forward and the
    // same backward (4 sends); 2 micro-batches of 64 rows on each of the 4 ranks, or with
    // duplicate-token dropping on half of them; 16 floats a row.
    const int64_t with = d[s]["all_to_all_bytes_all_ranks"].get<int64_t>();
    const int64_t without = u[s]["all_to_all_bytes_all_ranks"].get<int64_t>();
    EXPECT_EQ(without, 2 * 4 * (4 * 64) * 2 * 16 * 4) << s;
    EXPECT_EQ(2 * with, without) << s;
  }
  EXPECT_LT(max_rel_diff("dtd", "one"), kTolerance);
}

TEST_F(DistTrain, CheckpointedActivationsMatchAndRepeatNoExchange) {
  // TED (tensor 2 x data 2, experts over 2) with every block checkpointed: the same losses, norms
  // and weights as without, and lower peak memory. Keeping the collectives' results, the
  // recomputation repeats no all-to-all and no tensor-parallel all-reduce; without keeping them,
  // the MoE layer's two forward all-to-alls and each block's forward all-reduces run again.
  use_moe();
  const int steps = 3, accum = 2;
  const std::string ted = R"(, "zero_optimization": {"stage": 1}, "parallel": {"tensor": 2, "expert": 2})";
  auto [rc, out] = train(4, config("plain", accum, steps, ted));
  ASSERT_EQ(rc, 0) << out;
  auto [rc2, out2] = train(4, config("kept", accum, steps, ted + R"(, "activation_checkpointing": {"enabled": true})"));
  ASSERT_EQ(rc2, 0) << out2;
  auto [rc3, out3] = train(4, config("again", accum, steps,
                                     ted + R"(, "activation_checkpointing": {"enabled": true, "keep_communication": false})"));
  ASSERT_EQ(rc3, 0) << out3;
  auto p = steps_of("plain"), k = steps_of("kept"), a = steps_of("again");
  ASSERT_EQ(p.size(), (size_t)steps);
  ASSERT_EQ(k.size(), (size_t)steps);
  ASSERT_EQ(a.size(), (size_t)steps);
  auto calls = [](const nlohmann::json& j, const char* group, const char* c) { return j[group][c]["calls"].get<int64_t>(); };
  auto bytes = [](const nlohmann::json& j, const char* group, const char* c) {
    return j[group][c]["payload_bytes"].get<int64_t>();
  };
  for (int s = 0; s < steps; ++s) {
    for (const auto* r : {&k, &a}) {
      EXPECT_EQ((*r)[s]["loss"].get<double>(), p[s]["loss"].get<double>()) << s;
      EXPECT_EQ((*r)[s]["grad_norm"].get<double>(), p[s]["grad_norm"].get<double>()) << s;
    }
    EXPECT_EQ(calls(p[s], "expert_comm", "all_to_all"), 4 * accum);
    EXPECT_EQ(calls(k[s], "expert_comm", "all_to_all"), 4 * accum);
    EXPECT_EQ(bytes(k[s], "expert_comm", "all_to_all"), bytes(p[s], "expert_comm", "all_to_all"));
    EXPECT_EQ(k[s]["all_to_all_bytes_all_ranks"], p[s]["all_to_all_bytes_all_ranks"]);
    EXPECT_EQ(calls(a[s], "expert_comm", "all_to_all"), 6 * accum);
    EXPECT_EQ(2 * bytes(a[s], "expert_comm", "all_to_all"), 3 * bytes(p[s], "expert_comm", "all_to_all"));
    // Forward all-reduces: one per split half, 5 per micro-batch (block 1's MLP is the MoE layer).
    EXPECT_EQ(calls(k[s], "tensor_comm", "all_reduce"), calls(p[s], "tensor_comm", "all_reduce"));
    EXPECT_EQ(calls(a[s], "tensor_comm", "all_reduce"), calls(p[s], "tensor_comm", "all_reduce") + 5 * accum);
    EXPECT_LT(k[s]["peak_bytes"].get<int64_t>(), p[s]["peak_bytes"].get<int64_t>()) << s;
  }
  EXPECT_EQ(max_rel_diff("kept", "plain"), 0.0);
  EXPECT_EQ(max_rel_diff("again", "plain"), 0.0);
}

TEST_F(DistTrain, VocabParallelHalvesTheTokenTableAndResumesInOneProcess) {
  // Tensor 2 on 2 ranks, ZeRO 0: each rank's AdamW holds the moments of the parameters it holds.
  // With vocabulary parallelism wte [40, 16] is split by rows; without it, it is whole on both
  // ranks. Both match one process; the split run's checkpoint (wte gathered whole) resumes in one.
  const int steps = 6, accum = 2;
  ASSERT_EQ(train(0, config("one", accum, steps)).first, 0);
  auto [rc, out] = train(2, config("vp", accum, steps, R"(, "parallel": {"tensor": 2})"), "--stop-after 3");
  ASSERT_EQ(rc, 0) << out;
  auto [rc2, out2] = train(2, config("whole", accum, steps, R"(, "parallel": {"tensor": 2, "vocab_parallel": false})"));
  ASSERT_EQ(rc2, 0) << out2;
  auto vp = steps_of("vp"), whole = steps_of("whole");
  ASSERT_EQ(vp.size(), 3u);
  ASSERT_EQ(whole.size(), (size_t)steps);
  // Per rank, tensor 2: a block's LayerNorms 4x16, c_attn 24x16+24, attn c_proj 16x8+16, c_fc 32x16+32,
  // mlp c_proj 16x32+16; then wpe 16x16 and ln_f 2x16, and wte 20x16 (split) or 40x16 (whole).
  const int64_t block = 4 * 16 + (24 * 16 + 24) + (16 * 8 + 16) + (32 * 16 + 32) + (16 * 32 + 16);
  const int64_t rest = 16 * 16 + 2 * 16;
  for (size_t s = 0; s < vp.size(); ++s) {
    EXPECT_EQ(vp[s]["optimizer_bytes"].get<int64_t>(), 2 * (3 * block + rest + 20 * 16) * 4);
    EXPECT_EQ(whole[s]["optimizer_bytes"].get<int64_t>(), 2 * (3 * block + rest + 40 * 16) * 4);
    // Without vocabulary parallelism: only the blocks' all-reduces and the norm's.
    EXPECT_EQ(whole[s]["tensor_comm"]["all_reduce"]["calls"].get<int64_t>(), accum * 3 * 2 * 2 + 1);
    EXPECT_EQ(vp[s]["tensor_comm"]["all_reduce"]["calls"].get<int64_t>(), accum * (3 * 2 * 2 + 4) + 1);
  }
  EXPECT_LT(max_rel_diff("whole", "one"), kTolerance);
  auto [rc3, out3] = train(0, config("vp", accum, steps), "--resume");
  ASSERT_EQ(rc3, 0) << out3;
  EXPECT_LT(max_rel_diff("vp", "one"), kTolerance);
  auto a = steps_of("one"), b = steps_of("vp");
  ASSERT_EQ(b.size(), (size_t)steps);
  for (int s = 0; s < steps; ++s) {
    EXPECT_NEAR(b[s]["loss"].get<double>(), a[s]["loss"].get<double>(), 1e-5 * a[s]["loss"].get<double>()) << s;
    EXPECT_NEAR(whole[s]["loss"].get<double>(), a[s]["loss"].get<double>(), 1e-5 * a[s]["loss"].get<double>()) << s;
  }
}

TEST_F(DistTrain, UnsupportedLayoutsAreOneLineErrors) {
  auto [rc, out] = train(0, config("tp", 1, 3, R"(, "parallel": {"tensor": 2})"));
  EXPECT_EQ(rc, 1);
  EXPECT_TRUE(gannet::testing::has(out, "1 processes cannot be split into tensor-parallel groups of 2")) << out;
  auto [rc7, out7] = train(4, config("tp4", 1, 3, R"(, "parallel": {"tensor": 4})"));
  EXPECT_NE(rc7, 0);
  EXPECT_TRUE(gannet::testing::has(out7, "n_head 2 is not a multiple of parallel.tensor 4")) << out7;
  vocab_ = 41;  // cannot be split over 2 ranks by rows, unless vocabulary parallelism is off
  auto [rc8, out8] = train(2, config("v41", 1, 2, R"(, "parallel": {"tensor": 2})"));
  EXPECT_NE(rc8, 0);
  EXPECT_TRUE(gannet::testing::has(out8, "vocab_size 41 is not a multiple of parallel.tensor 2 (set "
                                         "parallel.vocab_parallel to false")) << out8;
  auto [rc9, out9] = train(2, config("v41", 1, 2, R"(, "parallel": {"tensor": 2, "vocab_parallel": false})"));
  EXPECT_EQ(rc9, 0) << out9;
  vocab_ = 40;
  auto [rc2, out2] = train(0, config("z3", 1, 3, R"(, "zero_optimization": {"stage": 3})"));
  EXPECT_EQ(rc2, 1);
  EXPECT_TRUE(gannet::testing::has(out2, "zero_optimization.stage: must be in [0, 2], got 3")) << out2;
  auto [rc4, out4] = train(2, config("ed", 1, 3, R"(, "parallel": {"expert": 2})"));
  EXPECT_EQ(rc4, 1);
  EXPECT_TRUE(gannet::testing::has(out4, "parallel.expert 2 needs a model with a moe block")) << out4;
  use_moe();
  auto [rc5, out5] = train(4, config("e4", 1, 3, R"(, "parallel": {"expert": 4})"));
  EXPECT_EQ(rc5, 0) << out5;  // 4 experts over 4 ranks: one each
  auto [rc6, out6] = train(2, config("e8", 1, 3, R"(, "parallel": {"expert": 4})"));
  EXPECT_NE(rc6, 0);
  EXPECT_TRUE(gannet::testing::has(out6, "is not a multiple of expert 4")) << out6;
  moe_.clear();
  auto [rc3, out3] = train(0, config("zk", 1, 3, R"(, "zero_optimization": {"stage": 1, "overlap_comm": true})"));
  EXPECT_EQ(rc3, 1);
  EXPECT_TRUE(gannet::testing::has(out3, "unknown key 'overlap_comm'")) << out3;
}

TEST_F(DistTrain, AnErrorOnEveryRankEndsTheJob) {
  // The data directory is missing: each rank fails, prints one line, and the job ends.
  std::string cfg = config("bad", 1, 2);
  fs::remove(dir_ / "val.tok");
  auto t0 = std::chrono::steady_clock::now();
  auto [rc, out] = train(2, cfg);
  EXPECT_NE(rc, 0);
  EXPECT_NE(rc, 124) << "timed out";
  EXPECT_TRUE(gannet::testing::has(out, "missing")) << out;
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 60);
}

TEST_F(DistTrain, DeadRankEndsTheJob) {
  auto t0 = std::chrono::steady_clock::now();
  auto [rc, out] = run(str(kMpiEnv, "GANNET_DIST_DIE=1 timeout 120 ", GANNET_MPIRUN, " -np 2 --oversubscribe ",
                           GANNET_DIST_TEST_BINARY, " --gtest_filter=Death.*"));
  EXPECT_EQ(rc, 3) << out;  // mpirun ends the job with the dead rank's status
  EXPECT_NE(rc, 124) << "timed out: the surviving rank hung";
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 60);
}

}  // namespace

namespace {
TEST(DistConfig, DemoZeroConfigIsTheDemoOnTwoProcesses) {
  train::TrainConfig z = train::read_train_config(std::string(GANNET_TEST_DATA) + "/../../configs/demo_zero.json");
  train::TrainConfig d = train::read_train_config(std::string(GANNET_TEST_DATA) + "/../../configs/demo.json");
  EXPECT_EQ(z.zero_stage, 1);
  EXPECT_EQ(z.model, d.model);
  EXPECT_EQ(2 * z.micro_batch * z.grad_accum, d.micro_batch * d.grad_accum);  // mpirun -np 2: the demo's batch
}
}  // namespace
