// Mini-batch GraphSAGE training speed from each feature store (gnn/feature_store.h): the raw f32
// matrix against BiFeat's compressed store, in the same run, epochs interleaved so that drift on a
// shared machine hits both alike. A step is what task "graph" runs: sample the seeds' blocks
// (gnn/neighbour_sampler.h), gather the input rows through the store, forward, backward, AdamW.
// Per store: the median epoch (or --max-batches batches) in seconds, seeds/s, sampled input rows
// gathered per second, and the ratio to the first store; the process's peak RSS at the end.
// --sample-only times sampling and gathering alone (no model): the loader's speed, the figure for
// the generated graph at scale. Run one store per process to attribute the peak RSS to it.
//
//   build/bench_graph_epoch --data data/debian-graph --stores raw,bifeat --epochs 5
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "gannet/autograd/ops.h"
#include "gannet/autograd/tape.h"
#include "gannet/kernels/blas_core.h"
#include "gannet/kernels/gemm.h"
#include "gannet/optim/adamw.h"
#include "gannet/train/evaluate_graph.h"

using namespace gannet;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::string data = "data/debian-graph";
  std::vector<std::string> stores = {"raw", "bifeat"};
  std::vector<int> fanouts = {15, 10};
  int64_t batch = 1024, hidden = 256, max_batches = 0;
  int epochs = 5, threads = 2;
  bool sample_only = false;
};

struct Timing {
  double seconds = 0;
  int64_t seeds = 0, rows = 0;  // seeds trained on, input rows gathered
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// One epoch over a fresh permutation of the training nodes (at most max_batches batches).
Timing run_epoch(const Args& a, const gnn::GraphDataset& data, const gnn::FeatureStore& store,
                 const gnn::NeighbourSampler& sampler, models::GraphSage& model, optim::AdamW& opt,
                 std::vector<int32_t> nodes, uint64_t seed) {
  Rng rng(seed);
  for (int64_t i = (int64_t)nodes.size() - 1; i > 0; --i) std::swap(nodes[i], nodes[rng.below(i + 1)]);
  const int64_t n = (int64_t)nodes.size();
  const int64_t batches = a.max_batches > 0 ? std::min((n + a.batch - 1) / a.batch, a.max_batches) : (n + a.batch - 1) / a.batch;
  Timing t;
  const auto t0 = Clock::now();
  for (int64_t b = 0; b < batches; ++b) {
    const std::vector<int32_t> seeds(nodes.begin() + b * a.batch, nodes.begin() + std::min(n, (b + 1) * a.batch));
    const gnn::MiniBatch mb = train::graph_batch(model, sampler, seeds, rng.next_u64());
    const autograd::Var x(train::gather_inputs(store, mb));
    t.seeds += (int64_t)seeds.size();
    t.rows += (int64_t)mb.input_nodes.size();
    if (a.sample_only) continue;
    Tensor labels = Tensor::empty({(int64_t)seeds.size()}, DType::i32);
    for (size_t i = 0; i < seeds.size(); ++i) labels.data<int32_t>()[i] = data.labels.data<int32_t>()[seeds[i]];
    nn::zero_grad(model.parameters());
    autograd::tape().backward(autograd::cross_entropy(model.logits(x, mb, &rng), labels));
    opt.step(3e-3f);
  }
  t.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return t;
}

void run(const Args& a) {
  kernels::set_num_threads(a.threads);
  const gnn::GraphDataset data = gnn::load_graph_dataset(a.data);
  std::vector<std::unique_ptr<gnn::FeatureStore>> stores;
  for (const std::string& s : a.stores) stores.push_back(gnn::open_feature_store(data, s));
  const gnn::NeighbourSampler sampler(data.graph, a.fanouts);
  models::GraphSageConfig c;
  c.in_dim = data.feature_dim();
  c.num_classes = data.num_classes();
  c.hidden = a.hidden;
  c.layers = (int64_t)a.fanouts.size();
  const std::vector<int32_t> train_nodes = data.nodes_in(gnn::kTrain);
  std::printf("%s: %ld nodes, %ld training; fan-outs", a.data.c_str(), (long)data.num_nodes(), (long)train_nodes.size());
  for (int f : a.fanouts) std::printf(" %d", f);
  std::printf(", batch %ld, hidden %ld, %d threads, %s\n", (long)a.batch, (long)a.hidden, a.threads,
              a.sample_only ? "sampling and gathering only" : "training steps");
  std::vector<std::vector<double>> secs(stores.size());
  std::vector<Timing> last(stores.size());
  for (int e = 0; e < a.epochs + 1; ++e) {  // epoch 0 warms the caches and the allocator: not counted
    for (size_t s = 0; s < stores.size(); ++s) {
      models::GraphSage model(c);
      model.init(1);
      optim::AdamW opt(model.parameters(), {});
      last[s] = run_epoch(a, data, *stores[s], sampler, model, opt, train_nodes, 100 + e);
      if (e > 0) secs[s].push_back(last[s].seconds);
    }
  }
  std::printf("%-8s %12s %10s %12s %14s %10s %8s\n", "store", "resident MB", "epoch s", "seeds/s", "rows/s", "GB/s out",
              "vs first");
  const double base = median(secs[0]);
  for (size_t s = 0; s < stores.size(); ++s) {
    const double m = median(secs[s]);
    std::printf("%-8s %12.1f %10.3f %12.0f %14.0f %10.2f %8.2f\n", a.stores[s].c_str(), stores[s]->bytes() / 1e6, m,
                last[s].seeds / m, last[s].rows / m, last[s].rows * data.feature_dim() * 4.0 / m / 1e9, base / m);
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::printf("median of %d epochs; peak RSS %.0f MiB (the process, every store)\n", a.epochs, ru.ru_maxrss / 1024.0);
}

}  // namespace

int main(int argc, char** argv) {
  kernels::ensure_blas_core(argv);
  CLI::App app{"GraphSAGE training (or loading) speed from the raw and the BiFeat feature stores"};
  Args a;
  app.add_option("--data", a.data, "data set of `gannet graph prepare` or `graph generate`")->capture_default_str();
  app.add_option("--stores", a.stores, "feature stores: raw, bifeat or BiFeat files")->delimiter(',')->capture_default_str();
  app.add_option("--fanouts", a.fanouts, "neighbours per hop from the seeds outwards")->delimiter(',')->capture_default_str();
  app.add_option("--batch", a.batch, "seed nodes per step")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  app.add_option("--hidden", a.hidden, "hidden width")->capture_default_str()->check(CLI::Range(1, 1 << 16));
  app.add_option("--epochs", a.epochs, "timed epochs per store (after one warm-up)")->capture_default_str()->check(CLI::Range(1, 1000));
  app.add_option("--max-batches", a.max_batches, "batches per epoch at most (0: the whole epoch)")->capture_default_str()
      ->check(CLI::Range(0, 1 << 30));
  app.add_option("--threads", a.threads, "threads")->capture_default_str()->check(CLI::Range(1, 256));
  app.add_flag("--sample-only", a.sample_only, "time sampling and gathering only");
  CLI11_PARSE(app, argc, argv);
  try {
    run(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_graph_epoch: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
