#include "gannet/cli/graph_compress_command.h"

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "gannet/cli/number_options.h"
#include "gannet/core/format_number.h"
#include "gannet/gnn/bifeat_compress.h"
#include "gannet/gnn/graph_dataset.h"
#include "gannet/kernels/gemm.h"

namespace gannet::cli {

namespace {

struct CompressArgs {
  std::string data;
  std::string out;  // empty: gnn::default_bifeat_path(data)
  gnn::BiFeatOptions opt;
  int threads = 0;
};

std::string mib(int64_t bytes) { return format_number("%.3f MiB", (double)bytes / (1 << 20)); }

void print_level(const char* name, const gnn::LevelReport& r) {
  std::printf("  %-7s %10lld %14s %9.2fx %12.3e %12.5f\n", name, (long long)r.rows, mib(r.bytes).c_str(), r.ratio,
              r.relative_mse, r.mean_cosine);
}

void print_report(const gnn::BiFeatReport& r) {
  std::printf("%s: %lld nodes x %lld features\n", r.path.c_str(), (long long)r.num_nodes, (long long)r.dim);
  std::printf("  %-7s %10s %14s %10s %12s %12s\n", "level", "nodes", "bytes", "ratio", "rel. MSE", "mean cos");
  print_level("log-SQ", r.sq);
  print_level("PQ", r.pq);
  std::printf("  %-7s %10s %14s   (node bitmap and ranks)\n", "map", "", mib(r.map_bytes).c_str());
  std::printf("  %-7s %10s %14s   (file header)\n", "other", "", mib(r.other_bytes).c_str());
  print_level("all", r.all);
  std::printf("overall %.2fx against the raw f32 matrix (%s); log-SQ %.2fs, k-means %.2fs, PQ encoding %.2fs\n",
              r.all.ratio, mib(r.num_nodes * r.dim * (int64_t)sizeof(float)).c_str(), r.seconds_sq, r.seconds_kmeans,
              r.seconds_pq_encode);
}

void run_compress(const CompressArgs& a) {
  if (a.threads > 0) kernels::set_num_threads(a.threads);
  const gnn::GraphDataset data = gnn::load_graph_dataset(a.data);
  const std::string out = a.out.empty() ? gnn::default_bifeat_path(a.data) : a.out;
  gnn::BiFeatOptions opt = a.opt;
  const auto start = std::chrono::steady_clock::now();
  opt.progress = [start](const std::string& s) {
    std::fprintf(stderr, "[%7.1fs] %s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                 s.c_str());
    std::fflush(stderr);
  };
  print_report(gnn::compress_features(data.features, data.graph, out, opt));
}

}  // namespace

void add_graph_compress_command(CLI::App& graph) {
  auto a = std::make_shared<CompressArgs>();
  CLI::App* cmd = graph.add_subcommand(
      "compress", "Compress a data set's node features with BiFeat: 8- or 4-bit log scalar quantization for the "
                  "highest-degree nodes (none by default), product quantization for the rest; prints each level's "
                  "size and error");
  cmd->add_option("--data", a->data, "Data set directory (from `gannet graph prepare` or `generate`)")->required();
  cmd->add_option("--out", a->out, "Output file (default: DIR/features.bifeat.safetensors)");
  cmd->add_option("--sq-fraction", a->opt.sq_fraction, "Fraction of the nodes, by degree, in the log-SQ level")
      ->capture_default_str()
      ->check(number_in<double>(NumberRange::closed(0, 1)));
  cmd->add_option("--sq-bits", a->opt.sq_bits, "Bits per value of the log-SQ level")
      ->capture_default_str()
      ->check(CLI::IsMember({4, 8}));
  cmd->add_option("--pq-subvectors", a->opt.pq_subvectors, "PQ sub-vectors M per row (bytes per PQ node; divides D)")
      ->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::closed(1, 1 << 16)));
  cmd->add_option("--codebook-bits", a->opt.codebook_bits,
                  "Bits per PQ codebook value: 32 (f32) or 8 (int8 with an f32 scale per column)")
      ->capture_default_str()
      ->check(CLI::IsMember({32, 8}));
  cmd->add_option("--kmeans-iters", a->opt.kmeans_iters, "Lloyd iterations per PQ sub-space")
      ->capture_default_str()
      ->check(number_in<int>(NumberRange::closed(0, 10000)));
  cmd->add_option("--kmeans-sample", a->opt.kmeans_sample, "PQ rows k-means trains on")
      ->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::closed(1, int64_t(1) << 26)));
  cmd->add_option("--seed", a->opt.seed, "Seed of the k-means sample and seeding")
      ->capture_default_str()
      ->check(number_in<uint64_t>(NumberRange::at_least(0)));
  add_threads_option(cmd, a->threads);
  cmd->callback([a]() { run_compress(*a); });
}

}  // namespace gannet::cli
