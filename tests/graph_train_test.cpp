// Task "graph" end to end on a small generated graph whose features alone say little (noisy
// class centroids) and whose edges say more (homophily): GraphSAGE learns well above the
// majority class and above the features-only MLP; a stopped and resumed run ends bitwise where an
// uninterrupted one does; `gannet graph train` and `graph eval` work as a user runs them; config
// mistakes are one-line errors.
#include <gtest/gtest.h>

#include "command_output.h"
#include "checkpoint_tensors.h"
#include "gannet/gnn/generated_graph.h"
#include "gannet/io/graphsage_checkpoint.h"
#include "gannet/train/trainer.h"
#include "test_files.h"

using namespace gannet;
using namespace gannet::testing;

namespace {

class GraphTrain : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    gnn::GeneratedGraphOptions o;
    o.out_dir = file("graph");
    o.num_nodes = 3000;
    o.feature_dim = 16;
    o.num_classes = 4;
    o.avg_degree = 12;
    o.homophily = 0.9;
    o.feature_noise = 0.6;  // centroids of norm ~1 in 16 dims: features alone are weak
    o.seed = 3;
    gnn::write_generated_graph(o);
  }

  std::string config(const std::string& type, int64_t steps, const std::string& out) const {
    return str(R"({"task": "graph", "model": {"type": ")", type,
               R"(", "hidden": 32, "layers": 2, "dropout": 0.1},
      "graph": {"fanouts": [8, 5]}, "data": {"dir": ")", file("graph"),
               R"("}, "train_micro_batch_size_per_gpu": 64, "train_steps": )", steps,
               R"(, "optimizer": {"type": "AdamW", "params": {"lr": 0.01}},
      "scheduler": {"type": "WarmupCosineLR", "params": {"warmup_num_steps": 5}},
      "eval": {"interval": 0, "batches": 0}, "checkpoint": {"dir": ")", out, R"("}, "seed": 7, "threads": 2})");
  }

  train::TrainResult train(const std::string& type, int64_t steps, const std::string& out,
                           int64_t stop_after = -1, bool resume = false) {
    train::TrainOptions o;
    o.progress = false;
    o.stop_after = stop_after;
    o.resume = resume;
    return train::run_training(train::parse_train_config(config(type, steps, out), "test config"), o);
  }
  static double accuracy(const train::TrainResult& r) { return r.validation.values.at(1); }
};

}  // namespace

TEST_F(GraphTrain, SageLearnsFromNeighboursBeyondTheFeaturesAlone) {
  const double sage = accuracy(train("sage", 120, file("sage")));
  const double mlp = accuracy(train("mlp", 120, file("mlp")));
  std::printf("[   INFO   ] validation accuracy: GraphSAGE %.4f, MLP %.4f\n", sage, mlp);
  // Four balanced classes: the majority class is right about a quarter of the time.
  EXPECT_GT(mlp, 0.35) << "the features carry some signal";
  EXPECT_GT(sage, mlp + 0.15) << "GraphSAGE " << sage << ", MLP " << mlp;
}

TEST_F(GraphTrain, ResumedRunEndsWhereAnUninterruptedOneDoes) {
  train("sage", 30, file("whole"));
  const train::TrainResult stopped = train("sage", 30, file("parts"), 13);
  EXPECT_EQ(stopped.steps_done, 13);
  train("sage", 30, file("parts"), -1, true);
  EXPECT_EQ(checkpoint_tensors(file("whole/checkpoint.safetensors")),
            checkpoint_tensors(file("parts/checkpoint.safetensors")));
}

TEST_F(GraphTrain, CommandLineTrainsAndEvaluates) {
  write(file("c.json"), config("sage", 20, file("cli")));
  const auto [rc, out] = command_status(str(GANNET_BINARY, " graph train --no-progress --config ", file("c.json"), " 2>&1"));
  EXPECT_EQ(rc, 0) << out;
  EXPECT_TRUE(has(out, "val_accuracy")) << out;
  const std::string ckpt = file("cli/checkpoint.safetensors");
  const auto [erc, eval] = command_status(str(GANNET_BINARY, " graph eval --checkpoint ", ckpt, " 2>&1"));
  EXPECT_EQ(erc, 0) << eval;
  EXPECT_TRUE(has(eval, "test accuracy")) << eval;
  EXPECT_TRUE(has(eval, "majority class")) << eval;
  // A wrong number of fan-outs for the model, and an LM config, are refused.
  const auto [frc, bad] = command_status(str(GANNET_BINARY, " graph eval --fanouts 5 --checkpoint ", ckpt, " 2>&1"));
  EXPECT_EQ(frc, 1);
  EXPECT_TRUE(has(bad, "--fanouts: 1 hops for a model of 2 layers")) << bad;
  write(file("lm.json"), R"({"task": "lm"})");
  const auto [lrc, lm] = command_status(str(GANNET_BINARY, " graph train --config ", file("lm.json"), " 2>&1"));
  EXPECT_EQ(lrc, 1);
  EXPECT_TRUE(has(lm, "is not \"graph\"")) << lm;
}

TEST_F(GraphTrain, ConfigMistakesAreErrors) {
  auto error_of = [&](const std::string& text) {
    return message_of([&] { train::parse_train_config(text, "c.json"); });
  };
  EXPECT_TRUE(has(error_of(R"({"task": "graph", "model": {"layers": 3}, "graph": {"fanouts": [5, 5]}})"),
                  "2 hops for a model of 3 layers"));
  EXPECT_TRUE(has(error_of(R"({"task": "graph", "graph": {"fanouts": [5, 0]}})"), "0 neighbours per hop"));
  EXPECT_TRUE(has(error_of(R"({"task": "graph", "model": {"num_classes": 3}})"), "follow from the data set"));
  EXPECT_TRUE(has(error_of(R"({"task": "graph", "model": {"type": "gcn"}})"), "not a graph model"));
  EXPECT_TRUE(has(error_of(R"({"task": "graph", "graph": {"fanout": [5, 5]}})"), "unknown key 'fanout'"));
}
