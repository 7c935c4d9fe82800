#include "gannet/gnn/generated_graph.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>
#include <numeric>
#include <utility>
#include <vector>

#include "gannet/core/error.h"
#include "gannet/core/rng.h"
#include "gannet/gnn/graph_dataset.h"
#include "gannet/io/safetensors_stream_writer.h"

namespace gannet::gnn {

namespace {

// Edges are drawn in chunks of this many, each chunk from its own random stream, so that both
// passes draw the same edges and neither depends on the number of threads.
constexpr int64_t kEdgeChunk = int64_t{1} << 18;
constexpr int64_t kFeatureRows = 1 << 15;  // rows generated and written at a time: 16 MB at D = 128

// Independent streams of one seed: Rng(key ^ index) for the index-th edge chunk, row, ...
struct StreamKeys {
  uint64_t edges, permutation, features, centroids;
  explicit StreamKeys(uint64_t seed) {
    Rng rng(seed);
    edges = rng.next_u64(), permutation = rng.next_u64(), features = rng.next_u64(), centroids = rng.next_u64();
  }
};
// The split does not depend on the seed: it is a hash of the node id alone.
constexpr uint64_t kSplitKey = 0x73706c6974ull;

// Draws r in [0, count) with probability proportional to the integral of (x + offset)^(-alpha)
// over [r, r + 1), by inverting that distribution's CDF: O(1) per draw and no table, where an
// alias table over 50M nodes would take 600 MB.
class PowerLawRanks {
 public:
  PowerLawRanks() = default;
  PowerLawRanks(int64_t count, double offset, double alpha)
      : count_(count), offset_(offset), a_(1 - alpha), low_(std::pow(offset, a_)),
        span_(std::pow((double)count + offset, a_) - low_) {}
  int64_t draw(double u) const {
    const double x = std::pow(low_ + u * span_, 1 / a_) - offset_;
    return std::clamp<int64_t>((int64_t)x, 0, count_ - 1);
  }
  // The probability of rank 0, the heaviest.
  double first_share() const { return (std::pow(1 + offset_, a_) - low_) / span_; }

 private:
  int64_t count_ = 1;
  double offset_ = 1, a_ = 0.5, low_ = 1, span_ = 1;
};

// The offset r0 that makes the expected degree of rank 0, avg_degree * N * P(rank 0), equal to
// sqrt(avg_degree * N); bisection in log space (the share falls as r0 grows).
double rank_offset(int64_t n, double avg_degree, double alpha) {
  const double target = std::sqrt(avg_degree * (double)n);
  double lo = std::log(1e-6), hi = std::log(1e15);
  for (int i = 0; i < 100; ++i) {
    const double mid = 0.5 * (lo + hi);
    if (avg_degree * (double)n * PowerLawRanks(n, std::exp(mid), alpha).first_share() > target) lo = mid;
    else hi = mid;
  }
  return std::exp(hi);
}

// The edge model of generated_graph.h: ranks drawn by weight, classes = rank mod C, node = a fixed
// permutation of the rank (rank * stride + shift mod N, stride coprime to N).
struct EdgeModel {
  int64_t n = 0, num_classes = 0, num_edges = 0;
  double homophily = 0;
  uint64_t stride = 1, shift = 0, key = 0;
  PowerLawRanks all;
  std::vector<PowerLawRanks> by_class;  // class c's ranks are c + C * j, j drawn here

  explicit EdgeModel(const GeneratedGraphOptions& o) : n(o.num_nodes), num_classes(o.num_classes) {
    num_edges = std::llround(o.avg_degree * (double)n / 2);
    homophily = o.homophily;
    const StreamKeys keys(o.seed);
    key = keys.edges;
    stride = (uint64_t)((double)n * 0.6180339887498949) | 1;
    while (std::gcd(stride, (uint64_t)n) != 1) ++stride;
    shift = keys.permutation % (uint64_t)n;
    const double alpha = 1 / (o.gamma - 1), r0 = rank_offset(n, o.avg_degree, alpha);
    all = PowerLawRanks(n, r0, alpha);
    for (int64_t c = 0; c < num_classes; ++c)
      by_class.emplace_back((n - 1 - c) / num_classes + 1, (c + r0) / (double)num_classes, alpha);
  }
  int64_t num_chunks() const { return (num_edges + kEdgeChunk - 1) / kEdgeChunk; }
  int32_t node_of(int64_t rank) const { return (int32_t)(((uint64_t)rank * stride + shift) % (uint64_t)n); }
  int32_t class_of_rank(int64_t rank) const { return (int32_t)(rank % num_classes); }

  // The chunk's edges but self loops, as (u, v) node pairs.
  void draw_chunk(int64_t chunk, std::vector<std::pair<int32_t, int32_t>>& edges) const {
    edges.clear();
    Rng rng(key ^ (uint64_t)chunk);
    const int64_t end = std::min(num_edges, (chunk + 1) * kEdgeChunk);
    for (int64_t e = chunk * kEdgeChunk; e < end; ++e) {
      const int64_t ru = all.draw(rng.uniform_double());
      int64_t rv;
      if (rng.uniform_double() < homophily) {
        const int64_t c = ru % num_classes;
        rv = c + num_classes * by_class[(size_t)c].draw(rng.uniform_double());
      } else {
        rv = all.draw(rng.uniform_double());
      }
      if (ru != rv) edges.emplace_back(node_of(ru), node_of(rv));
    }
  }
};

// Progress lines on stderr: a step's start, every tenth of it, its end with the time taken.
class Progress {
 public:
  Progress(bool on, const char* step, int64_t total) : on_(on), step_(step), total_(total) {
    if (on_) std::fprintf(stderr, "graph generate: %s...\n", step_);
  }
  // Marks one more unit done; safe from any thread.
  void advance() {
    const int64_t done = done_.fetch_add(1, std::memory_order_relaxed) + 1;
    if (on_ && total_ >= 20 && done * 10 / total_ != (done - 1) * 10 / total_)
      std::fprintf(stderr, "graph generate: %s %lld%% (%.1f s)\n", step_, (long long)(done * 100 / total_), seconds());
  }
  ~Progress() {
    if (on_) std::fprintf(stderr, "graph generate: %s done in %.1f s\n", step_, seconds());
  }
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

 private:
  bool on_;
  const char* step_;
  int64_t total_;
  std::atomic<int64_t> done_{0};
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// Calls update(u, v) for every edge, chunk by chunk in parallel. The updates are atomic
// read-modify-writes at random rows, each a cache miss that an atomic cannot overlap with the
// next: the rows' cache lines are prefetched 16 edges ahead, and ahead(u, v), 8 edges ahead, may
// prefetch what the update will touch through them.
template <class Ahead, class Update>
void for_each_edge(const EdgeModel& m, const int64_t* rows, Progress& progress, Ahead&& ahead, Update&& update) {
#pragma omp parallel
  {
    std::vector<std::pair<int32_t, int32_t>> edges;
#pragma omp for schedule(dynamic, 1)
    for (int64_t chunk = 0; chunk < m.num_chunks(); ++chunk) {
      m.draw_chunk(chunk, edges);
      for (size_t i = 0; i < edges.size(); ++i) {
        if (i + 16 < edges.size()) {
          __builtin_prefetch(rows + edges[i + 16].first, 1);
          __builtin_prefetch(rows + edges[i + 16].second, 1);
        }
        if (i + 8 < edges.size()) ahead(edges[i + 8].first, edges[i + 8].second);
        update(edges[i].first, edges[i].second);
      }
      progress.advance();
    }
  }
}

// Pass 1: indptr[v + 1] = degree of v, then the running sum: indptr[v + 1] = end of v's row.
void count_degrees(const EdgeModel& m, int64_t* indptr, bool progress) {
  Progress p(progress, "counting degrees", m.num_chunks());
  std::fill(indptr, indptr + m.n + 1, 0);
  for_each_edge(m, indptr + 1, p, [](int32_t, int32_t) {}, [&](int32_t u, int32_t v) {
    std::atomic_ref<int64_t>(indptr[u + 1]).fetch_add(1, std::memory_order_relaxed);
    std::atomic_ref<int64_t>(indptr[v + 1]).fetch_add(1, std::memory_order_relaxed);
  });
  for (int64_t v = 0; v < m.n; ++v) indptr[v + 1] += indptr[v];
}

// Pass 2: the same edges, each end written at its row's end cursor, which moves down; afterwards
// indptr[v + 1] is where row v starts, and shifting the array left by one gives the row offsets.
void fill_rows(const EdgeModel& m, int64_t* indptr, int32_t* indices, bool progress) {
  Progress p(progress, "filling rows", m.num_chunks());
  const int64_t total = indptr[m.n];
  auto slot = [&](int32_t v) {  // where v's cursor points now (another thread may move it first)
    return indices + std::atomic_ref<int64_t>(indptr[v + 1]).load(std::memory_order_relaxed) - 1;
  };
  auto ahead = [&](int32_t u, int32_t v) { __builtin_prefetch(slot(u), 1), __builtin_prefetch(slot(v), 1); };
  for_each_edge(m, indptr + 1, p, ahead, [&](int32_t u, int32_t v) {
    indices[std::atomic_ref<int64_t>(indptr[u + 1]).fetch_sub(1, std::memory_order_relaxed) - 1] = v;
    indices[std::atomic_ref<int64_t>(indptr[v + 1]).fetch_sub(1, std::memory_order_relaxed) - 1] = u;
  });
  std::copy(indptr + 1, indptr + m.n + 1, indptr);
  indptr[m.n] = total;
}

// Sorts each row and drops repeated neighbours (the order the fill wrote them in depends on the
// threads; sorted, it does not), then packs the rows to the front. Returns the entries kept.
int64_t sort_and_pack_rows(int64_t n, int64_t* indptr, int32_t* indices, bool progress) {
  {
    Progress p(progress, "sorting rows", (n + 65535) / 65536);
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t block = 0; block < (n + 65535) / 65536; ++block) {
      for (int64_t v = block * 65536; v < std::min(n, (block + 1) * 65536); ++v) {
        int32_t* b = indices + indptr[v];
        int32_t* e = indices + indptr[v + 1];
        std::sort(b, e);
        std::fill(std::unique(b, e), e, -1);  // the repeats' slots, marked for the packing below
      }
      p.advance();
    }
  }
  Progress p(progress, "packing rows", 1);
  int64_t write = 0, begin = 0;
  for (int64_t v = 0; v < n; ++v) {
    const int64_t end = indptr[v + 1];
    int64_t kept = end;
    while (kept > begin && indices[kept - 1] < 0) --kept;
    std::copy(indices + begin, indices + kept, indices + write);  // write <= begin: moves left
    write += kept - begin;
    indptr[v + 1] = write;
    begin = end;
  }
  return write;
}

}  // namespace

void check_options(const GeneratedGraphOptions& o) {
  GANNET_CHECK(o.num_nodes >= 2 && o.num_nodes <= INT32_MAX, "generated graph: --nodes ", o.num_nodes,
               " is outside [2, ", INT32_MAX, "] (node ids are i32)");
  GANNET_CHECK(o.feature_dim >= 1 && o.feature_dim <= 65536, "generated graph: --dim ", o.feature_dim,
               " is outside [1, 65536]");
  GANNET_CHECK(o.num_classes >= 2 && o.num_classes <= o.num_nodes, "generated graph: --classes ", o.num_classes,
               " is outside [2, nodes = ", o.num_nodes, "]");
  GANNET_CHECK(o.avg_degree > 0 && o.avg_degree <= 1000 && o.avg_degree < (double)o.num_nodes,
               "generated graph: --avg-degree ", o.avg_degree, " is outside (0, min(1000, nodes))");
  GANNET_CHECK(o.avg_degree * (double)o.num_nodes <= (double)INT64_MAX / 4, "generated graph: too many edges");
  GANNET_CHECK(o.gamma > 2 && o.gamma <= 5, "generated graph: gamma ", o.gamma, " is outside (2, 5]");
  GANNET_CHECK(o.homophily >= 0 && o.homophily <= 1, "generated graph: homophily ", o.homophily,
               " is outside [0, 1]");
  GANNET_CHECK(o.feature_noise >= 0 && std::isfinite(o.feature_noise), "generated graph: feature noise ",
               o.feature_noise, " is negative or not finite");
}

GeneratedGraph generate_graph(const GeneratedGraphOptions& o, bool progress) {
  check_options(o);
  const EdgeModel m(o);
  GeneratedGraph g;
  g.graph.num_nodes = o.num_nodes;
  g.graph.indptr = Tensor::empty({o.num_nodes + 1}, DType::i64);
  int64_t* indptr = g.graph.indptr.data<int64_t>();
  count_degrees(m, indptr, progress);
  Tensor indices = Tensor::empty({indptr[o.num_nodes]}, DType::i32);
  fill_rows(m, indptr, indices.data<int32_t>(), progress);
  const int64_t kept = sort_and_pack_rows(o.num_nodes, indptr, indices.data<int32_t>(), progress);
  g.graph.indices = indices.slice(0, kept);  // the repeats' tail stays allocated: a few percent

  g.labels = Tensor::empty({o.num_nodes}, DType::i32);
  g.split = Tensor::empty({o.num_nodes}, DType::u8);
  int32_t* labels = g.labels.data<int32_t>();
  uint8_t* split = g.split.data<uint8_t>();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < o.num_nodes; ++r) {
    const int32_t v = m.node_of(r);
    labels[v] = m.class_of_rank(r);
    const uint64_t h = Rng(kSplitKey ^ (uint64_t)v).below(10);
    split[v] = h < 8 ? kTrain : h == 8 ? kValidation : kTest;
  }
  return g;
}

Tensor class_centroids(const GeneratedGraphOptions& o) {
  Tensor c = Tensor::empty({o.num_classes, o.feature_dim});
  Rng rng(StreamKeys(o.seed).centroids);
  const float scale = 1.0f / std::sqrt((float)o.feature_dim);
  for (int64_t i = 0; i < c.numel(); ++i) c.f32()[i] = scale * rng.normal();
  return c;
}

void generate_feature_rows(const GeneratedGraphOptions& o, const Tensor& centroids, const int32_t* labels,
                           int64_t begin, int64_t end, float* out) {
  check_shape(centroids, {o.num_classes, o.feature_dim}, "generated graph: class centroids");
  const int64_t d = o.feature_dim;
  const uint64_t key = StreamKeys(o.seed).features;
  const float noise = (float)o.feature_noise;
#pragma omp parallel for schedule(static) if (end - begin > 256)
  for (int64_t v = begin; v < end; ++v) {
    Rng rng(key ^ (uint64_t)v);
    const float* mean = centroids.f32() + labels[v] * d;
    float* row = out + (v - begin) * d;
    // Box-Muller in single precision, both outputs of each pair used, both uniforms from one
    // 64-bit draw: twice as fast as in double, and the tails it cuts (beyond 5.8 sigma, as u1 >=
    // 2^-24) do not matter to synthetic features.
    for (int64_t j = 0; j < d; j += 2) {
      const uint64_t bits = rng.next_u64();
      const float u1 = (float)((bits >> 40) + 1) * 0x1p-24f, u2 = (float)((bits >> 16) & 0xffffff) * 0x1p-24f;
      const float r = noise * std::sqrt(-2 * std::log(u1)), t = 6.2831853f * u2;
      row[j] = mean[j] + r * std::cos(t);
      if (j + 1 < d) row[j + 1] = mean[j + 1] + r * std::sin(t);
    }
  }
}

namespace {

// Degree figures by counting (degrees are far below N), where sorting 50M degrees would take
// seconds and 400 MB: nearest-rank percentiles and a histogram in powers of two.
nlohmann::json degree_summary(const CsrGraph& g) {
  const int64_t n = g.num_nodes;
  int64_t max_degree = 0;
  for (int64_t v = 0; v < n; ++v) max_degree = std::max(max_degree, g.degree(v));
  std::vector<int64_t> count((size_t)max_degree + 1, 0);
  for (int64_t v = 0; v < n; ++v) ++count[(size_t)g.degree(v)];
  auto percentile = [&](double q) {  // the smallest degree with at least ceil(q * n) nodes at or below it
    const int64_t rank = std::max<int64_t>(1, (int64_t)std::ceil(q * (double)n));
    int64_t seen = 0;
    for (int64_t k = 0; k <= max_degree; ++k)
      if ((seen += count[(size_t)k]) >= rank) return k;
    return max_degree;
  };
  nlohmann::json histogram = nlohmann::json::array();
  for (int64_t lo = 1; lo <= max_degree; lo *= 2) {
    const int64_t hi = std::min(2 * lo - 1, max_degree);
    const int64_t nodes = std::accumulate(count.begin() + lo, count.begin() + hi + 1, int64_t{0});
    histogram.push_back({{"from", lo}, {"to", hi}, {"nodes", nodes}});
  }
  const int64_t min_degree = percentile(0);
  return {{"min", min_degree}, {"median", percentile(0.5)}, {"mean", (double)g.num_directed_edges() / (double)n},
          {"p90", percentile(0.9)}, {"p99", percentile(0.99)}, {"p999", percentile(0.999)}, {"max", max_degree},
          {"isolated_nodes", count[0]}, {"histogram_powers_of_two", histogram}};
}

// The fraction of neighbour entries whose two ends share a class.
double edge_homophily(const CsrGraph& g, const int32_t* labels) {
  int64_t same = 0;
#pragma omp parallel for schedule(dynamic, 65536) reduction(+ : same)
  for (int64_t v = 0; v < g.num_nodes; ++v)
    for (int64_t p = g.offsets()[v]; p < g.offsets()[v + 1]; ++p) same += labels[g.neighbours()[p]] == labels[v];
  return g.num_directed_edges() ? (double)same / (double)g.num_directed_edges() : 0.0;
}

// Per class and split part, the node counts; and the majority class of the training nodes with
// its accuracy on the validation and test nodes.
nlohmann::json class_summary(const GeneratedGraph& g, const std::vector<std::string>& classes) {
  std::vector<std::array<int64_t, 3>> per_class(classes.size(), {0, 0, 0});
  const int32_t* labels = g.labels.data<int32_t>();
  const uint8_t* split = g.split.data<uint8_t>();
  for (int64_t v = 0; v < g.graph.num_nodes; ++v) ++per_class[(size_t)labels[v]][split[v]];
  nlohmann::json out = nlohmann::json::array();
  std::array<int64_t, 3> parts = {0, 0, 0};
  size_t majority = 0;
  for (size_t c = 0; c < classes.size(); ++c) {
    const auto& k = per_class[c];
    out.push_back({{"name", classes[c]}, {"nodes", k[0] + k[1] + k[2]}, {"train", k[0]}, {"validation", k[1]},
                   {"test", k[2]}});
    for (int p = 0; p < 3; ++p) parts[(size_t)p] += k[(size_t)p];
    if (k[kTrain] > per_class[majority][kTrain]) majority = c;
  }
  auto share = [&](int part) { return parts[(size_t)part] ? (double)per_class[majority][(size_t)part] / (double)parts[(size_t)part] : 0.0; };
  return {{"classes", out},
          {"split", {{"train", parts[kTrain]}, {"validation", parts[kValidation]}, {"test", parts[kTest]},
                     {"rule", "a hash of the node id modulo 10: 0-7 train, 8 validation, 9 test"}}},
          {"majority_baseline", {{"class", classes[majority]}, {"validation_accuracy", share(kValidation)},
                                 {"test_accuracy", share(kTest)}}}};
}

nlohmann::json generated_summary(const GeneratedGraphOptions& o, const GeneratedGraph& g,
                                 const std::vector<std::string>& classes) {
  nlohmann::json s = {
      {"source", "generated"},
      {"note", "GENERATED data, not a real graph: a synthetic node-classification set shaped like ogbn-papers100M "
               "(gannet graph generate), for speed and memory figures at scale"},
      {"generator", {{"model", "Chung-Lu power-law degrees, homophilous edges, class centroid + Gaussian features"},
                     {"seed", o.seed}, {"avg_degree_drawn", o.avg_degree}, {"gamma", o.gamma},
                     {"homophily", o.homophily}, {"feature_noise", o.feature_noise}}},
      {"nodes", g.graph.num_nodes},
      {"undirected_edges", g.graph.num_directed_edges() / 2},
      {"degree", degree_summary(g.graph)},
      {"edge_homophily", edge_homophily(g.graph, g.labels.data<int32_t>())},
      {"features", {{"dim", o.feature_dim}, {"dtype", "F32"},
                    {"bytes", (uint64_t)o.num_nodes * (uint64_t)o.feature_dim * 4}}},
  };
  s.update(class_summary(g, classes));
  return s;
}

// Generates the features block by block, each block written by a second thread while the next is
// generated: copying a block into the page cache (or waiting for the disk) takes as long as
// generating it.
void write_features(const GeneratedGraphOptions& o, const Tensor& labels, bool progress) {
  const int64_t n = o.num_nodes, d = o.feature_dim;
  io::SafetensorsStreamWriter out((std::filesystem::path(o.out_dir) / "features.safetensors").string(), "features",
                                  DType::f32, {n, d}, {{"source", "generated"}});
  const Tensor centroids = class_centroids(o);
  std::vector<float> rows[2];
  std::future<void> written;
  Progress p(progress, "writing features", (n + kFeatureRows - 1) / kFeatureRows);
  for (int64_t begin = 0, block = 0; begin < n; begin += kFeatureRows, ++block) {
    const int64_t end = std::min(n, begin + kFeatureRows);
    std::vector<float>& buf = rows[block % 2];
    buf.resize((size_t)((end - begin) * d));
    generate_feature_rows(o, centroids, labels.data<int32_t>(), begin, end, buf.data());
    if (written.valid()) written.get();  // the other buffer is free again; rethrows a failed write
    written = std::async(std::launch::async, [&out, &buf, &p, count = end - begin] {
      out.append(buf.data(), count);
      p.advance();
    });
  }
  if (written.valid()) written.get();
  out.finish();
}

}  // namespace

GeneratedGraphReport write_generated_graph(const GeneratedGraphOptions& o, bool progress) {
  const auto start = std::chrono::steady_clock::now();
  check_options(o);
  std::error_code ec;
  std::filesystem::create_directories(o.out_dir, ec);
  GANNET_CHECK(!ec, "cannot create ", o.out_dir, ": ", ec.message());
  const GeneratedGraph g = generate_graph(o, progress);
  write_features(o, g.labels, progress);

  std::vector<std::string> classes;
  for (int c = 0; c < o.num_classes; ++c) classes.push_back("class" + std::to_string(c));
  GeneratedGraphReport r;
  r.nodes = o.num_nodes;
  r.undirected_edges = g.graph.num_directed_edges() / 2;
  r.feature_bytes = (uint64_t)o.num_nodes * (uint64_t)o.feature_dim * 4;
  r.summary = generated_summary(o, g, classes).dump(2) + "\n";
  {
    Progress p(progress, "writing graph, nodes and names", 1);
    // save_graph_files takes the names as strings: 32 bytes each (short-string storage), 1.6 GB at 50M nodes.
    std::vector<std::string> names((size_t)o.num_nodes);
    char name[24];
    for (int64_t v = 0; v < o.num_nodes; ++v)
      names[(size_t)v].assign(name, (size_t)std::snprintf(name, sizeof name, "n%lld", (long long)v));
    save_graph_files(o.out_dir, "generated", g.graph, g.labels, g.split, classes, names, r.summary);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace gannet::gnn
