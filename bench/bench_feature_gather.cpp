// Mini-batch feature gather: the raw f32 store against the BiFeat store (fused decode), over a
// random [N, D] matrix and random batches of node ids, as rows/s and GB/s of output beside the
// memory-read bandwidth measured in the same run. Also each BiFeat level alone (batches of only
// log-SQ or only PQ nodes), since a sampler's batches hold more high-degree (SQ) nodes than a
// uniform draw does.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "gannet/core/rng.h"
#include "gannet/gnn/bifeat_compress.h"
#include "gannet/gnn/feature_store.h"
#include "gannet/kernels/blas_core.h"
#include "gannet/kernels/gemm.h"
#include "gannet/kernels/memory_bandwidth.h"

using namespace gannet;
using Clock = std::chrono::steady_clock;

namespace {

// A fresh batch for every gather (the warm-up's included): a repeated batch would find its rows
// in the cache and time the cache instead of the store.
struct Batches {
  std::vector<std::vector<int32_t>> list;
};

Batches draw(const std::vector<int32_t>& from, int64_t n, int count, Rng& rng) {
  Batches b;
  for (int c = 0; c < count; ++c) {
    std::vector<int32_t> nodes((size_t)n);
    for (auto& v : nodes) v = from[rng.below(from.size())];
    b.list.push_back(std::move(nodes));
  }
  return b;
}

// Median seconds of gathering batches 1.. of `b`, after batch 0 as a warm-up.
double median_gather_seconds(const gnn::FeatureStore& store, const Batches& b, std::vector<float>& out) {
  store.gather(b.list[0].data(), (int64_t)b.list[0].size(), out.data());
  std::vector<double> t;
  for (size_t r = 1; r < b.list.size(); ++r) {
    const auto t0 = Clock::now();
    store.gather(b.list[r].data(), (int64_t)b.list[r].size(), out.data());
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

void report(const char* name, const gnn::FeatureStore& store, const Batches& b, double bw) {
  const int64_t rows = (int64_t)b.list[0].size();
  std::vector<float> out((size_t)(rows * store.dim()));
  const double s = median_gather_seconds(store, b, out);
  const double gbps = (double)out.size() * sizeof(float) / s / 1e9;
  std::printf("  %-22s %8.2f ms  %7.1f M rows/s  %6.2f GB/s of output (%5.1f%% of the read bandwidth)\n", name, s * 1e3,
              (double)rows / s / 1e6, gbps, 100 * gbps / bw);
}

}  // namespace

int main(int argc, char** argv) {
  kernels::ensure_blas_core(argv);
  CLI::App app{"feature gather benchmark: raw f32 rows against BiFeat's fused decode"};
  int threads = 2, reps = 7;
  int64_t nodes = 1000000, dim = 128, batch = 100000;
  gnn::BiFeatOptions opt;
  opt.kmeans_iters = 3;  // the codebooks' quality does not change the gather's speed
  opt.kmeans_sample = 16384;
  std::string file = (std::filesystem::temp_directory_path() / "bench_feature_gather.bifeat.safetensors").string();
  app.add_option("--threads,-t", threads)->capture_default_str();
  app.add_option("--nodes,-n", nodes)->capture_default_str();
  app.add_option("--dim,-d", dim)->capture_default_str();
  app.add_option("--batch,-b", batch, "rows per gather")->capture_default_str();
  app.add_option("--reps,-r", reps, "timed gathers per figure (the median is shown)")->capture_default_str();
  app.add_option("--sq-fraction", opt.sq_fraction)->capture_default_str();
  app.add_option("--sq-bits", opt.sq_bits)->capture_default_str();
  app.add_option("--pq-subvectors", opt.pq_subvectors)->capture_default_str();
  app.add_option("--file", file, "where the BiFeat file is written (removed at the end)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  kernels::set_num_threads(threads);

  Rng rng(1);
  Tensor features = Tensor::empty({nodes, dim});
  for (int64_t i = 0; i < nodes * dim; ++i) features.f32()[i] = rng.normal();
  gnn::CsrGraph graph;  // no edges: the SQ level is chosen by a random importance instead of degree
  graph.num_nodes = nodes;
  graph.indptr = Tensor::zeros({nodes + 1}, DType::i64);
  graph.indices = Tensor::empty({0}, DType::i32);
  for (int64_t v = 0; v < nodes; ++v) opt.importance.push_back(rng.uniform());
  const gnn::BiFeatReport r = gnn::compress_features(features, graph, file, opt);
  const gnn::BiFeatStore bifeat = gnn::BiFeatStore::open(file);
  const gnn::RawFeatureStore raw(features);
  std::filesystem::remove(file);

  const double bw = kernels::measure_read_bandwidth();
  std::printf("[%lld, %lld] features, batches of %lld random nodes, %d threads, median of %d; memory read bandwidth "
              "%.1f GB/s\n",
              (long long)nodes, (long long)dim, (long long)batch, threads, reps, bw);
  std::printf("  raw %.1f MiB; BiFeat %.2f MiB (%.1fx: log-SQ %d bits on %lld nodes, PQ M = %lld)\n",
              raw.bytes() / 1048576.0, bifeat.bytes() / 1048576.0, r.all.ratio, opt.sq_bits,
              (long long)bifeat.sq_rows(), (long long)opt.pq_subvectors);
  std::vector<int32_t> all(nodes), sq, pq;
  for (int32_t v = 0; v < nodes; ++v) {
    all[v] = v;
    (bifeat.in_sq_level(v) ? sq : pq).push_back(v);
  }
  const Batches uniform = draw(all, batch, reps + 1, rng);
  report("raw f32, uniform", raw, uniform, bw);
  report("BiFeat, uniform", bifeat, uniform, bw);
  if (!sq.empty()) report("BiFeat, log-SQ nodes", bifeat, draw(sq, batch, reps + 1, rng), bw);
  if (!pq.empty()) report("BiFeat, PQ nodes", bifeat, draw(pq, batch, reps + 1, rng), bw);
  std::printf("  (both write the whole output; a raw gather also reads as many bytes, BiFeat 1/%.0f of them)\n",
              r.all.ratio);
  return 0;
}
