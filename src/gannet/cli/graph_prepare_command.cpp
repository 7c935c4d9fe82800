#include "gannet/cli/graph_prepare_command.h"

#include <sys/wait.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "gannet/cli/number_options.h"
#include "gannet/core/atomic_file.h"
#include "gannet/core/error.h"
#include "gannet/gnn/debian_graph.h"
#include "gannet/gnn/debian_packages.h"
#include "gannet/gnn/graph_dataset.h"
#include "gannet/gnn/text_features.h"
#include "gannet/kernels/gemm.h"

namespace gannet::cli {

namespace {

struct GraphPrepareOptions {
  std::string source;
  std::string out = "data/debian-graph";
  std::string dumpavail;  // a saved `apt-cache dumpavail` output; empty: run apt-cache
  int64_t dim = 128;
  int64_t min_class = 50;
  uint64_t seed = 0;
  int threads = 0;
};

// Seconds since `start`, and a progress line flushed at once (the features take a while).
class Steps {
 public:
  double lap() {
    const auto now = std::chrono::steady_clock::now();
    const double s = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    return s;
  }
  double total() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }
  static void note(const std::string& what) {
    std::printf("%s\n", what.c_str());
    std::fflush(stdout);
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_ = start_;
};

std::string run_apt_cache_dumpavail() {
  constexpr const char* kHint = "or pass --dumpavail FILE with a saved `apt-cache dumpavail` output";
  FILE* p = popen("apt-cache dumpavail 2>/dev/null", "r");
  GANNET_CHECK(p, "cannot run apt-cache dumpavail: ", std::strerror(errno));
  std::string text;
  char buf[1 << 16];
  for (size_t k; (k = std::fread(buf, 1, sizeof buf, p)) > 0;) text.append(buf, k);
  const int rc = pclose(p);
  GANNET_CHECK(!(WIFEXITED(rc) && WEXITSTATUS(rc) == 127), "apt-cache not found: --source debian reads Debian's "
                                                           "package index through apt (", kHint, ")");
  GANNET_CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "apt-cache dumpavail failed (exit status ",
               WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, "): run `apt-get update` first, ", kHint);
  GANNET_CHECK(!text.empty(), "apt-cache dumpavail printed nothing: the package lists are empty; run `apt-get "
                              "update` first, ", kHint);
  return text;
}

void print_summary(const nlohmann::json& s, const std::string& out) {
  const auto& d = s["degree"];
  std::printf("debian package graph in %s: %lld nodes, %lld undirected edges, %lld isolated nodes\n", out.c_str(),
              s["nodes"].get<long long>(), s["undirected_edges"].get<long long>(), s["isolated_nodes"].get<long long>());
  std::printf("  degree: min %lld, median %lld, mean %.2f, p90 %lld, p99 %lld, max %lld\n", d["min"].get<long long>(),
              d["median"].get<long long>(), d["mean"].get<double>(), d["p90"].get<long long>(),
              d["p99"].get<long long>(), d["max"].get<long long>());
  const auto& dep = s["dependencies"];
  std::printf("  relation groups: %lld, to packages %lld, to virtual packages' providers %lld, unresolved %lld\n",
              dep["groups"].get<long long>(), dep["resolved_real"].get<long long>(),
              dep["resolved_virtual"].get<long long>(), dep["unresolved"].get<long long>());
  std::vector<std::pair<long long, std::string>> classes;
  for (const auto& c : s["classes"]) classes.emplace_back(c["nodes"].get<long long>(), c["name"].get<std::string>());
  std::sort(classes.rbegin(), classes.rend());
  std::string largest;
  for (size_t i = 0; i < std::min<size_t>(5, classes.size()); ++i)
    largest += str(i ? ", " : "", classes[i].second, " ", classes[i].first);
  std::printf("  %zu classes (sections under %lld packages merged into 'other'), largest: %s\n", classes.size(),
              s["labels"]["min_class"].get<long long>(), largest.c_str());
  const auto& sp = s["split"];
  const auto& b = s["majority_baseline"];
  std::printf("  split: train %lld, validation %lld, test %lld; majority baseline '%s': validation %.4f, test %.4f\n",
              sp["train"].get<long long>(), sp["validation"].get<long long>(), sp["test"].get<long long>(),
              b["class"].get<std::string>().c_str(), b["validation_accuracy"].get<double>(),
              b["test_accuracy"].get<double>());
  const auto& f = s["features"];
  std::printf("  features: %lld dims from %lld words, holding %.1f%% of the TF-IDF matrix's energy\n",
              f["dim"].get<long long>(), f["words"].get<long long>(), 100.0 * f["svd_energy"].get<double>());
}

void prepare_debian(const GraphPrepareOptions& o) {
  Steps steps;
  Steps::note(o.dumpavail.empty() ? "reading `apt-cache dumpavail`" : "reading " + o.dumpavail);
  const std::string text = o.dumpavail.empty() ? run_apt_cache_dumpavail() : read_file(o.dumpavail);
  const std::string from = o.dumpavail.empty() ? "apt-cache dumpavail" : o.dumpavail;
  gnn::DebianArchive archive;
  try {
    archive = gnn::parse_dumpavail(text);
  } catch (const Error& e) {
    fail(str(from, ": ", e.what()));
  }
  GANNET_CHECK(!archive.packages.empty(), from, ": no package stanzas (run `apt-get update` first?)");
  const gnn::DebianGraphOptions graph_options{o.min_class};
  const gnn::DebianGraph g = gnn::build_debian_graph(archive.packages, graph_options);
  const double t_graph = steps.lap();

  Steps::note(str("text features of ", g.names.size(), " packages: TF-IDF, randomized SVD to ", o.dim, " dims"));
  gnn::TextFeatureOptions feature_options;
  feature_options.dim = o.dim;
  feature_options.seed = o.seed;
  const gnn::TextFeatures tf = gnn::text_features(g.names, g.descriptions, feature_options);
  const double t_features = steps.lap();

  nlohmann::json summary = gnn::debian_graph_summary(g, archive, graph_options);
  summary["features"] = {{"dim", o.dim}, {"words", tf.words}, {"svd_energy", tf.energy}, {"method", tf.method}};
  gnn::save_feature_file(o.out, tf.features);
  gnn::save_graph_files(o.out, "debian", g.graph, g.labels, g.split, g.classes, g.names, summary.dump(2) + "\n");
  const double t_write = steps.lap();
  print_summary(summary, o.out);
  std::printf("  took %.1f s: index and graph %.1f s, features %.1f s, writing %.1f s\n", steps.total(), t_graph,
              t_features, t_write);
}

}  // namespace

void add_graph_prepare_command(CLI::App& graph) {
  auto o = std::make_shared<GraphPrepareOptions>();
  CLI::App* cmd = graph.add_subcommand(
      "prepare", "Write a node-classification data set: --source debian is Debian's package graph (nodes: binary "
                 "packages, edges: Depends/Pre-Depends/Recommends, classes: sections, features: TF-IDF of name and "
                 "synopsis reduced by a randomized SVD)");
  cmd->add_option("--source", o->source, "Graph to prepare (supported: debian)")->required();
  cmd->add_option("--out", o->out, "Output directory (files replaced atomically)")->capture_default_str();
  cmd->add_option("--dim", o->dim, "Feature dimensions (SVD components)")
      ->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::closed(1, 4096)));
  cmd->add_option("--min-class", o->min_class, "Sections with fewer packages are merged into the class 'other'")
      ->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::at_least(1)));
  cmd->add_option("--seed", o->seed, "Seed of the SVD's random test matrix")
      ->capture_default_str()
      ->check(number_in<uint64_t>(NumberRange::at_least(0)));
  cmd->add_option("--dumpavail", o->dumpavail, "Read this saved `apt-cache dumpavail` output instead of running apt-cache")
      ->check(CLI::ExistingFile);
  add_threads_option(cmd, o->threads);
  cmd->callback([o]() {
    GANNET_CHECK(o->source == "debian", "--source: '", o->source, "' is not a supported source (supported: debian)");
    if (o->threads > 0) kernels::set_num_threads(o->threads);
    prepare_debian(*o);
  });
}

}  // namespace gannet::cli
