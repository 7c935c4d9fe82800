// The Debian package graph: one node per binary package, an undirected edge wherever one package
// depends on, pre-depends on or recommends another; the node's class is its archive section and
// its split part a hash of its name. `gannet graph prepare --source debian` builds it.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "gannet/core/tensor.h"
#include "gannet/gnn/csr_graph.h"
#include "gannet/gnn/debian_packages.h"
#include "gannet/gnn/graph_dataset.h"

namespace gannet::gnn {

struct DebianGraphOptions {
  int64_t min_class = 50;  // sections with fewer packages are merged into the class "other"
};

// How the relation groups of Depends, Pre-Depends and Recommends resolved.
struct DependencyCounts {
  int64_t groups = 0;         // relation groups read
  int64_t real = 0;           // resolved to a package in the index
  int64_t virtual_ = 0;       // resolved to the providers of a virtual package
  int64_t unresolved = 0;     // naming neither (packages of other architectures or suites)
  int64_t self = 0;           // references of a package to itself (Provides of its own name): no edge
};

struct DebianGraph {
  std::vector<std::string> names;         // node id -> package name, ascending
  std::vector<std::string> descriptions;  // node id -> synopsis
  CsrGraph graph;
  Tensor labels;  // i32 [N]
  Tensor split;   // u8 [N]
  std::vector<std::string> classes;          // ascending; "other" among them when sections merged
  std::vector<std::string> merged_sections;  // the sections merged into "other", ascending
  DependencyCounts dependencies;
};

// Resolution of a relation group "a | b | c": the first alternative that is a package in the
// index; failing that, the first that is a virtual package some indexed package provides, which
// stands for all of its providers (each one satisfies the dependency, so each is a neighbour).
DebianGraph build_debian_graph(const std::vector<DebianPackage>& packages, const DebianGraphOptions& options);

// The section without its archive area: everything up to the last '/' goes ("non-free/libs",
// and Ubuntu's "universe/python", become "libs", "python"); an empty section is "unknown".
std::string section_label(std::string_view section);

uint64_t fnv1a64(std::string_view bytes);
// The split part of a package: FNV-1a of its name modulo 10; 0-7 train, 8 validation, 9 test.
SplitPart split_of(std::string_view name);

struct DegreeStats {
  int64_t min = 0, median = 0, p90 = 0, p99 = 0, max = 0;  // nearest-rank percentiles
  double mean = 0;
  int64_t isolated = 0;
};
DegreeStats degree_stats(const CsrGraph& graph);

// The class most frequent among the training nodes (the lowest id among ties) and the accuracy
// of always predicting it on the validation and test nodes.
struct MajorityBaseline {
  int32_t label = 0;
  double validation_accuracy = 0, test_accuracy = 0;
};
MajorityBaseline majority_baseline(const Tensor& labels, const Tensor& split, int64_t num_classes);

// The summary.json of the graph (without the features, which the caller adds): nodes, edges,
// degrees, class counts per split part, the majority baseline and the rules that built it.
nlohmann::json debian_graph_summary(const DebianGraph& g, const DebianArchive& archive,
                                    const DebianGraphOptions& options);

}  // namespace gannet::gnn
