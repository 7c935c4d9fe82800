#include "gannet/cli/graph_generate_command.h"

#include <CLI/CLI.hpp>
#include <climits>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "gannet/cli/number_options.h"
#include "gannet/gnn/generated_graph.h"
#include "gannet/kernels/gemm.h"

namespace gannet::cli {

namespace {

void print_report(const gnn::GeneratedGraphOptions& o, const gnn::GeneratedGraphReport& r) {
  const nlohmann::json s = nlohmann::json::parse(r.summary);
  const nlohmann::json& d = s["degree"];
  std::printf("GENERATED graph (synthetic, shaped like ogbn-papers100M) in %s\n", o.out_dir.c_str());
  std::printf("  nodes %lld, undirected edges %lld, classes %d, edge homophily %.3f\n", (long long)r.nodes,
              (long long)r.undirected_edges, o.num_classes, s["edge_homophily"].get<double>());
  std::printf("  degree: min %lld, median %lld, mean %.2f, p90 %lld, p99 %lld, p99.9 %lld, max %lld; %lld isolated\n",
              (long long)d["min"], (long long)d["median"], d["mean"].get<double>(), (long long)d["p90"],
              (long long)d["p99"], (long long)d["p999"], (long long)d["max"], (long long)d["isolated_nodes"]);
  std::printf("  degree histogram:");
  for (const auto& bin : d["histogram_powers_of_two"])
    std::printf(" [%lld,%lld] %lld", (long long)bin["from"], (long long)bin["to"], (long long)bin["nodes"]);
  std::printf("\n  features: f32 [%lld, %lld], %.2f GB raw\n", (long long)r.nodes, (long long)o.feature_dim,
              (double)r.feature_bytes / 1e9);
  std::printf("  time %.1f s\n", r.seconds);
}

}  // namespace

void add_graph_generate_command(CLI::App& graph) {
  auto opt = std::make_shared<gnn::GeneratedGraphOptions>();
  auto threads = std::make_shared<int>(0);
  CLI::App* cmd = graph.add_subcommand(
      "generate", "Write a GENERATED node-classification data set shaped like ogbn-papers100M (power-law degrees, "
                  "homophilous edges, class centroid + noise features; synthetic, labelled so in its files) for "
                  "speed and memory figures at scale. The CSR takes about 4 * avg-degree bytes per node, the "
                  "features 4 * dim bytes per node on disk");
  cmd->add_option("--out", opt->out_dir, "Output directory")->capture_default_str();
  cmd->add_option("--nodes", opt->num_nodes, "Number of nodes")
      ->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::closed(2, INT32_MAX)));
  cmd->add_option("--dim", opt->feature_dim, "Feature dimension")
      ->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::closed(1, 65536)));
  cmd->add_option("--classes", opt->num_classes, "Number of classes (at most --nodes)")
      ->capture_default_str()
      ->check(number_in<int>(NumberRange::closed(2, 1 << 20)));
  cmd->add_option("--avg-degree", opt->avg_degree,
                  "Neighbours per node drawn, before self loops and repeated edges are dropped (30: ~15 edges per node)")
      ->capture_default_str()
      ->check(number_in<double>(NumberRange::left_open(0, 1000)));
  cmd->add_option("--gamma", opt->gamma, "Exponent of the power-law degree distribution")
      ->capture_default_str()
      ->check(number_in<double>(NumberRange::left_open(2, 5)));
  cmd->add_option("--homophily", opt->homophily, "Probability that an edge's far end is drawn from the same class")
      ->capture_default_str()
      ->check(number_in<double>(NumberRange::closed(0, 1)));
  cmd->add_option("--seed", opt->seed, "Seed of the generator")
      ->capture_default_str()
      ->check(number_in<uint64_t>(NumberRange::at_least(0)));
  add_threads_option(cmd, *threads);
  cmd->callback([opt, threads]() {
    if (*threads > 0) kernels::set_num_threads(*threads);
    print_report(*opt, gnn::write_generated_graph(*opt, true));
  });
}

}  // namespace gannet::cli
