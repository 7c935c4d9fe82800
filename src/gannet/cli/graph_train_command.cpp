#include "gannet/cli/graph_train_command.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>

#include "gannet/cli/number_options.h"
#include "gannet/core/format_number.h"
#include "gannet/io/graphsage_checkpoint.h"
#include "gannet/kernels/gemm.h"
#include "gannet/metrics/majority_baseline.h"
#include "gannet/train/evaluate_graph.h"
#include "gannet/train/trainer.h"

namespace gannet::cli {

namespace {

struct TrainArgs {
  std::string config;
  bool resume = false, no_progress = false;
  int64_t stop_after = -1;
};

void run_train(const TrainArgs& a) {
  const train::TrainConfig cfg = train::read_train_config(a.config);
  GANNET_CHECK(cfg.task == "graph", a.config, ": task '", cfg.task, "' is not \"graph\" (`gannet train` trains it)");
  train::TrainOptions opt;
  opt.resume = a.resume;
  opt.progress = !a.no_progress;
  opt.stop_after = a.stop_after;
  const train::TrainResult r = train::run_training(cfg, opt);
  if (r.interrupted) std::exit(130);
  if (r.steps_done < cfg.steps) {
    std::printf("stopped at step %ld of %ld; checkpoint %s\n", (long)r.steps_done, (long)cfg.steps,
                r.checkpoint.c_str());
    return;
  }
  std::printf("final: step %ld", (long)r.steps_done);
  if (r.steps_run > 0) std::printf(", train loss %.4f", r.final_train_loss);
  std::printf("%s, %.0f nodes/s\ncheckpoint: %s\n", r.validation.listed().c_str(), r.tokens_per_second,
              r.checkpoint.c_str());
}

struct EvalArgs {
  std::string checkpoint, data, features, split = "test";
  std::vector<int> fanouts;
  int64_t batch = 1024;
  uint64_t seed = 1234;
  int threads = 0;
};

// The labels of `nodes`.
std::vector<int32_t> labels_of(const gnn::GraphDataset& d, const std::vector<int32_t>& nodes) {
  std::vector<int32_t> out(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) out[i] = d.labels.data<int32_t>()[nodes[i]];
  return out;
}

void run_eval(EvalArgs a) {
  if (a.threads > 0) kernels::set_num_threads(a.threads);
  const models::GraphSageConfig mc = io::read_graphsage_checkpoint_config(a.checkpoint);
  // Defaults from the run that wrote the checkpoint: its data, features and fan-outs.
  io::TrainState state;
  models::GraphSage model(mc);
  io::load_graphsage_checkpoint(a.checkpoint, model, nullptr, &state);
  if (!state.train_config.empty()) {
    const train::TrainConfig tc = train::parse_train_config(state.train_config, a.checkpoint + " train_config");
    if (a.data.empty()) a.data = tc.data_dir;
    if (a.features.empty()) a.features = tc.graph_features;
    if (a.fanouts.empty()) a.fanouts = tc.fanouts;
  }
  GANNET_CHECK(!a.data.empty(), a.checkpoint, ": holds no training config; give --data");
  if (a.features.empty()) a.features = "raw";
  if (a.fanouts.empty()) a.fanouts.assign(mc.layers, 10);
  const gnn::GraphDataset data = gnn::load_graph_dataset(a.data);
  GANNET_CHECK(data.feature_dim() == mc.in_dim && data.num_classes() == mc.num_classes, a.data, ": ",
               data.feature_dim(), " features and ", data.num_classes(), " classes, but the model takes ", mc.in_dim,
               " and ", mc.num_classes);
  GANNET_CHECK(!mc.is_sage() || (int64_t)a.fanouts.size() == mc.layers, "--fanouts: ", a.fanouts.size(),
               " hops for a model of ", mc.layers, " layers");
  const std::unique_ptr<gnn::FeatureStore> store = gnn::open_feature_store(data, a.features);
  const gnn::NeighbourSampler sampler(data.graph, a.fanouts);
  const gnn::SplitPart part = a.split == "train" ? gnn::kTrain : a.split == "validation" ? gnn::kValidation : gnn::kTest;
  const std::vector<int32_t> nodes = data.nodes_in(part);
  const train::GraphEval e = train::evaluate_graph(model, data, *store, sampler, nodes, a.batch, 0, a.seed);
  const metrics::MajorityBaseline base = metrics::majority_baseline(
      labels_of(data, data.nodes_in(gnn::kTrain)), labels_of(data, nodes), (int)data.num_classes());
  std::printf("%s: %s accuracy %.4f, loss %.4f (%ld nodes; features %s)\n", a.checkpoint.c_str(), a.split.c_str(),
              e.accuracy, e.loss, (long)e.nodes, a.features.c_str());
  std::printf("majority class '%s': %s accuracy %.4f\n", data.classes[base.majority_class].c_str(), a.split.c_str(),
              base.accuracy);
}

}  // namespace

void add_graph_train_commands(CLI::App& graph) {
  auto t = std::make_shared<TrainArgs>();
  CLI::App* train = graph.add_subcommand(
      "train", "Train GraphSAGE (or the features-only MLP) from a JSON config of task \"graph\" (configs/debian_sage.json)");
  train->add_option("--config,-c", t->config, "training config (JSON)")->required()->check(CLI::ExistingFile);
  train->add_flag("--resume", t->resume, "continue from the checkpoint in checkpoint.dir");
  train->add_flag("--no-progress", t->no_progress, "no progress bar");
  train->add_option("--stop-after", t->stop_after, "stop after this many steps, with a checkpoint")
      ->check(number_in<int64_t>(NumberRange::at_least(0)));
  train->callback([t]() { run_train(*t); });

  auto e = std::make_shared<EvalArgs>();
  CLI::App* eval = graph.add_subcommand(
      "eval", "Accuracy of a GraphSAGE checkpoint on a split of its data set, beside the majority class");
  eval->add_option("--checkpoint", e->checkpoint, "checkpoint of `gannet graph train`")->required()->check(CLI::ExistingFile);
  eval->add_option("--data", e->data, "data set directory (default: the training run's)");
  eval->add_option("--features", e->features, "\"raw\" or a BiFeat file (default: the training run's)");
  eval->add_option("--split", e->split, "which nodes")->capture_default_str()->check(CLI::IsMember({"test", "validation", "train"}));
  eval->add_option("--fanouts", e->fanouts, "neighbours per hop from the seeds outwards (default: the training run's)")
      ->delimiter(',')
      ->check(number_in<int>(NumberRange::closed(-1, 1 << 16)));
  eval->add_option("--batch", e->batch, "seed nodes per batch")->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::closed(1, kMaxBatchOption)));
  eval->add_option("--seed", e->seed, "seed of the neighbour sampling")->capture_default_str();
  add_threads_option(eval, e->threads);
  eval->callback([e]() { run_eval(*e); });
}

}  // namespace gannet::cli
