#include "gannet/gnn/debian_graph.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <set>
#include <unordered_map>
#include <utility>

#include "gannet/core/error.h"

namespace gannet::gnn {

namespace {

constexpr const char* kResolutionRule =
    "a group 'a | b' resolves to its first alternative that is a package in the index, else to its first "
    "alternative that is a virtual package provided by indexed packages, which stands for all of its providers; "
    "self references dropped, edges undirected and deduplicated";
constexpr const char* kDuplicateRule = "several stanzas of one name: the highest version (dpkg ordering) is kept, "
                                       "the first read among equal versions";
constexpr const char* kLabelRule = "the Section field without its archive area (text up to the last '/'); "
                                   "sections with fewer than min_class packages merged into 'other'";
constexpr const char* kSplitRule = "FNV-1a 64 of the package name modulo 10: 0-7 train, 8 validation, 9 test";

using Edge = std::pair<int32_t, int32_t>;  // (u, v) with u < v

struct Resolver {
  std::unordered_map<std::string_view, int32_t> id;                    // real packages
  std::unordered_map<std::string_view, std::vector<int32_t>> providers;  // virtual name -> providers, ascending
};

Resolver make_resolver(const std::vector<const DebianPackage*>& nodes) {
  Resolver r;
  for (size_t v = 0; v < nodes.size(); ++v) r.id.emplace(nodes[v]->name, (int32_t)v);
  // Nodes are visited in ascending id order, so each provider list is ascending; a package that
  // lists a name twice adds itself once.
  for (size_t v = 0; v < nodes.size(); ++v)
    for (const std::string& p : nodes[v]->provides) {
      std::vector<int32_t>& list = r.providers[p];
      if (list.empty() || list.back() != (int32_t)v) list.push_back((int32_t)v);
    }
  return r;
}

// The edges of node u for the groups of one relation field (kResolutionRule).
void add_relations(int32_t u, const std::vector<Alternatives>& groups, const Resolver& r, std::vector<Edge>& edges,
                   DependencyCounts& counts) {
  for (const Alternatives& group : groups) {
    ++counts.groups;
    std::vector<int32_t> targets;
    for (const std::string& alt : group)
      if (auto it = r.id.find(alt); it != r.id.end()) {
        targets.push_back(it->second);
        break;
      }
    if (!targets.empty()) {
      ++counts.real;
    } else {
      for (const std::string& alt : group)
        if (auto it = r.providers.find(alt); it != r.providers.end()) {
          targets = it->second;
          break;
        }
      ++(targets.empty() ? counts.unresolved : counts.virtual_);
    }
    for (int32_t t : targets) {
      if (t == u) ++counts.self;
      else edges.emplace_back(std::min(u, t), std::max(u, t));
    }
  }
}

CsrGraph to_csr(int64_t n, std::vector<Edge>& edges) {
  std::sort(edges.begin(), edges.end());
  edges.erase(std::unique(edges.begin(), edges.end()), edges.end());
  CsrGraph g;
  g.num_nodes = n;
  g.indptr = Tensor::zeros({n + 1}, DType::i64);
  g.indices = Tensor::empty({2 * (int64_t)edges.size()}, DType::i32);
  int64_t* off = g.indptr.data<int64_t>();
  for (const Edge& e : edges) ++off[e.first + 1], ++off[e.second + 1];
  for (int64_t v = 0; v < n; ++v) off[v + 1] += off[v];
  std::vector<int64_t> cursor(off, off + n);
  int32_t* idx = g.indices.data<int32_t>();
  // Edges are sorted by (u, v): node x first receives its smaller neighbours (as the v of (u, x),
  // u ascending), then its larger ones (as the u of (x, v), v ascending), so every row comes out
  // ascending without a sort.
  for (const Edge& e : edges) {
    idx[cursor[e.first]++] = e.second;
    idx[cursor[e.second]++] = e.first;
  }
  return g;
}

// Labels from sections (kLabelRule); classes ascending by name.
void assign_labels(DebianGraph& g, const std::vector<std::string>& sections, int64_t min_class) {
  std::map<std::string, int64_t> counts;
  for (const std::string& s : sections) ++counts[s];
  std::set<std::string> classes;
  for (const auto& [section, count] : counts) {
    if (count >= min_class) {
      classes.insert(section);
    } else {
      classes.insert("other");
      g.merged_sections.push_back(section);
    }
  }
  g.classes.assign(classes.begin(), classes.end());
  std::map<std::string, int32_t> id;
  for (size_t c = 0; c < g.classes.size(); ++c) id[g.classes[c]] = (int32_t)c;
  g.labels = Tensor::empty({(int64_t)sections.size()}, DType::i32);
  int32_t* lab = g.labels.data<int32_t>();
  for (size_t v = 0; v < sections.size(); ++v)
    lab[v] = counts[sections[v]] >= min_class ? id.at(sections[v]) : id.at("other");
}

// Nearest-rank percentile of ascending values: the smallest value with at least q of them at or
// below it.
int64_t nearest_rank(const std::vector<int64_t>& sorted, double q) {
  const int64_t n = (int64_t)sorted.size();
  const int64_t rank = std::clamp<int64_t>((int64_t)std::ceil(q * (double)n), 1, n);
  return sorted[rank - 1];
}

}  // namespace

DebianGraph build_debian_graph(const std::vector<DebianPackage>& packages, const DebianGraphOptions& options) {
  GANNET_CHECK(options.min_class >= 1, "debian graph: min_class must be >= 1, got ", options.min_class);
  GANNET_CHECK(packages.size() < (size_t)INT32_MAX, "debian graph: ", packages.size(), " packages exceed i32 ids");
  std::vector<const DebianPackage*> nodes;
  for (const DebianPackage& p : packages) nodes.push_back(&p);
  std::sort(nodes.begin(), nodes.end(), [](const DebianPackage* a, const DebianPackage* b) { return a->name < b->name; });
  for (size_t v = 1; v < nodes.size(); ++v)
    GANNET_CHECK(nodes[v]->name != nodes[v - 1]->name, "debian graph: package '", nodes[v]->name, "' appears twice");

  DebianGraph g;
  const Resolver resolver = make_resolver(nodes);
  std::vector<Edge> edges;
  std::vector<std::string> sections;
  for (size_t v = 0; v < nodes.size(); ++v) {
    const DebianPackage& p = *nodes[v];
    g.names.push_back(p.name);
    g.descriptions.push_back(p.description);
    sections.push_back(section_label(p.section));
    for (const auto* field : {&p.depends, &p.pre_depends, &p.recommends})
      add_relations((int32_t)v, *field, resolver, edges, g.dependencies);
  }
  g.graph = to_csr((int64_t)nodes.size(), edges);
  assign_labels(g, sections, options.min_class);
  g.split = Tensor::empty({(int64_t)nodes.size()}, DType::u8);
  for (size_t v = 0; v < nodes.size(); ++v) g.split.data<uint8_t>()[v] = split_of(g.names[v]);
  return g;
}

std::string section_label(std::string_view section) {
  const size_t slash = section.rfind('/');
  if (slash != std::string_view::npos) section.remove_prefix(slash + 1);
  return section.empty() ? "unknown" : std::string(section);
}

uint64_t fnv1a64(std::string_view bytes) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
  return h;
}

SplitPart split_of(std::string_view name) {
  const uint64_t r = fnv1a64(name) % 10;
  return r < 8 ? kTrain : r == 8 ? kValidation : kTest;
}

DegreeStats degree_stats(const CsrGraph& graph) {
  DegreeStats s;
  if (graph.num_nodes == 0) return s;
  std::vector<int64_t> deg(graph.num_nodes);
  for (int64_t v = 0; v < graph.num_nodes; ++v) deg[v] = graph.degree(v);
  std::sort(deg.begin(), deg.end());
  s.min = deg.front(), s.max = deg.back();
  s.median = nearest_rank(deg, 0.5), s.p90 = nearest_rank(deg, 0.9), s.p99 = nearest_rank(deg, 0.99);
  s.mean = (double)graph.num_directed_edges() / (double)graph.num_nodes;
  s.isolated = std::upper_bound(deg.begin(), deg.end(), int64_t(0)) - deg.begin();
  return s;
}

MajorityBaseline majority_baseline(const Tensor& labels, const Tensor& split, int64_t num_classes) {
  const int32_t* lab = labels.data<int32_t>();
  const uint8_t* part = split.data<uint8_t>();
  std::vector<int64_t> train(num_classes, 0);
  for (int64_t v = 0; v < labels.numel(); ++v)
    if (part[v] == kTrain) {
      GANNET_CHECK(lab[v] >= 0 && lab[v] < num_classes, "majority baseline: label ", lab[v], " of node ", v,
                   " is outside [0, ", num_classes, ")");
      ++train[lab[v]];
    }
  MajorityBaseline b;
  b.label = (int32_t)(std::max_element(train.begin(), train.end()) - train.begin());
  int64_t hits[3] = {0, 0, 0}, total[3] = {0, 0, 0};
  for (int64_t v = 0; v < labels.numel(); ++v) {
    GANNET_CHECK(part[v] <= kTest, "majority baseline: split value ", (int)part[v], " of node ", v, " is not 0, 1 or 2");
    ++total[part[v]], hits[part[v]] += lab[v] == b.label;
  }
  b.validation_accuracy = total[kValidation] ? (double)hits[kValidation] / (double)total[kValidation] : 0.0;
  b.test_accuracy = total[kTest] ? (double)hits[kTest] / (double)total[kTest] : 0.0;
  return b;
}

nlohmann::json debian_graph_summary(const DebianGraph& g, const DebianArchive& archive,
                                    const DebianGraphOptions& options) {
  using nlohmann::json;
  const int64_t n = g.graph.num_nodes;
  const DegreeStats d = degree_stats(g.graph);
  std::vector<std::array<int64_t, 3>> per_class(g.classes.size(), {0, 0, 0});
  std::array<int64_t, 3> parts = {0, 0, 0};
  for (int64_t v = 0; v < n; ++v) {
    const uint8_t p = g.split.data<uint8_t>()[v];
    ++per_class[g.labels.data<int32_t>()[v]][p], ++parts[p];
  }
  json classes = json::array();
  for (size_t c = 0; c < g.classes.size(); ++c) {
    const auto& k = per_class[c];
    classes.push_back({{"name", g.classes[c]}, {"nodes", k[0] + k[1] + k[2]}, {"train", k[0]},
                       {"validation", k[1]}, {"test", k[2]}});
  }
  const MajorityBaseline b = majority_baseline(g.labels, g.split, (int64_t)g.classes.size());
  const DependencyCounts& dep = g.dependencies;
  return json{
      {"source", "debian"},
      {"nodes", n},
      {"undirected_edges", g.graph.num_directed_edges() / 2},
      {"isolated_nodes", d.isolated},
      {"degree", {{"min", d.min}, {"median", d.median}, {"mean", d.mean}, {"p90", d.p90}, {"p99", d.p99}, {"max", d.max}}},
      {"split", {{"train", parts[kTrain]}, {"validation", parts[kValidation]}, {"test", parts[kTest]}, {"rule", kSplitRule}}},
      {"classes", classes},
      {"labels", {{"rule", kLabelRule}, {"min_class", options.min_class}, {"merged_sections", g.merged_sections}}},
      {"majority_baseline",
       {{"class", g.classes.empty() ? "" : g.classes[b.label]},
        {"validation_accuracy", b.validation_accuracy},
        {"test_accuracy", b.test_accuracy}}},
      {"packages",
       {{"stanzas", archive.stanzas}, {"duplicates_dropped", archive.duplicates},
        {"stanzas_without_name", archive.nameless}, {"duplicate_rule", kDuplicateRule}}},
      {"dependencies",
       {{"fields", {"Depends", "Pre-Depends", "Recommends"}}, {"rule", kResolutionRule}, {"groups", dep.groups},
        {"resolved_real", dep.real}, {"resolved_virtual", dep.virtual_}, {"unresolved", dep.unresolved},
        {"self_references", dep.self}}},
  };
}

}  // namespace gannet::gnn
