#include "gannet/gnn/generated_graph.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "gannet/core/atomic_file.h"
#include "gannet/gnn/graph_dataset.h"
#include "gannet/kernels/gemm.h"
#include "test_files.h"
#include "thread_count.h"

using namespace gannet;
using namespace gannet::gnn;
using namespace gannet::testing;

namespace {

GeneratedGraphOptions small(uint64_t seed = 0) {
  GeneratedGraphOptions o;
  o.num_nodes = 20000;
  o.feature_dim = 16;
  o.num_classes = 10;
  o.seed = seed;
  return o;
}

bool same_tensor(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// The fraction of neighbour entries joining two nodes of one class, counted here independently.
double same_class_share(const GeneratedGraph& g) {
  int64_t same = 0;
  const int32_t* lab = g.labels.data<int32_t>();
  for (int64_t v = 0; v < g.graph.num_nodes; ++v)
    for (int64_t p = g.graph.offsets()[v]; p < g.graph.offsets()[v + 1]; ++p) same += lab[g.graph.neighbours()[p]] == lab[v];
  return (double)same / (double)g.graph.num_directed_edges();
}

class GeneratedGraphTest : public TempDirTest {};

}  // namespace

TEST(GeneratedGraph, CsrIsSymmetricSortedWithoutLoopsOrRepeats) {
  const GeneratedGraph g = generate_graph(small());
  const CsrGraph& c = g.graph;
  ASSERT_EQ(c.num_nodes, 20000);
  ASSERT_EQ(c.offsets()[0], 0);
  ASSERT_EQ(c.offsets()[c.num_nodes], c.indices.numel());
  for (int64_t v = 0; v < c.num_nodes; ++v) {
    ASSERT_LE(c.offsets()[v], c.offsets()[v + 1]);
    for (int64_t p = c.offsets()[v]; p < c.offsets()[v + 1]; ++p) {
      const int32_t u = c.neighbours()[p];
      ASSERT_TRUE(u >= 0 && u < c.num_nodes && u != v) << "node " << v << " lists " << u;
      if (p > c.offsets()[v]) {
        ASSERT_LT(c.neighbours()[p - 1], u) << "row " << v << " not strictly ascending";
      }
      ASSERT_TRUE(std::binary_search(c.neighbours_of(u), c.neighbours_of(u) + c.degree(u), (int32_t)v))
          << v << " -> " << u << " has no reverse entry";
    }
  }
}

TEST(GeneratedGraph, SameSeedSameGraphWhateverTheThreads) {
  RestoreThreadCount restore;
  kernels::set_num_threads(1);
  const GeneratedGraph a = generate_graph(small(5));
  kernels::set_num_threads(2);
  const GeneratedGraph b = generate_graph(small(5));
  EXPECT_TRUE(same_tensor(a.graph.indptr, b.graph.indptr));
  EXPECT_TRUE(same_tensor(a.graph.indices, b.graph.indices));
  EXPECT_TRUE(same_tensor(a.labels, b.labels));
  EXPECT_TRUE(same_tensor(a.split, b.split));
  const GeneratedGraph c = generate_graph(small(6));
  EXPECT_FALSE(same_tensor(a.graph.indices, c.graph.indices));
}

TEST(GeneratedGraph, DegreesAreHeavyTailed) {
  const GeneratedGraphOptions o = small();
  const GeneratedGraph g = generate_graph(o);
  const double mean = (double)g.graph.num_directed_edges() / (double)g.graph.num_nodes;
  int64_t max_degree = 0, above_4_mean = 0;
  for (int64_t v = 0; v < g.graph.num_nodes; ++v) {
    max_degree = std::max(max_degree, g.graph.degree(v));
    above_4_mean += g.graph.degree(v) > 4 * mean;
  }
  // Self loops and repeats cost a few percent of the drawn degree; the largest expected degree is
  // sqrt(30 * 20000) = 775, which a Poisson-like graph of mean 30 would never reach.
  EXPECT_GT(mean, 0.85 * o.avg_degree);
  EXPECT_LE(mean, o.avg_degree);
  EXPECT_GT(max_degree, 15 * mean);
  EXPECT_GT(above_4_mean, 100);  // a tail, not one outlier
}

TEST(GeneratedGraph, EdgesAreHomophilousAsAsked) {
  GeneratedGraphOptions o = small();
  o.homophily = 0;
  const double chance = same_class_share(generate_graph(o));
  EXPECT_NEAR(chance, 1.0 / o.num_classes, 0.02);  // classes of equal size and equal degree mix
  o.homophily = 0.6;
  // An edge's far end is in the class with probability 0.6 + 0.4 / 10.
  EXPECT_NEAR(same_class_share(generate_graph(o)), 0.64, 0.03);
}

TEST(GeneratedGraph, SplitAndLabelsFollowTheRules) {
  const GeneratedGraphOptions o = small();
  const GeneratedGraph g = generate_graph(o);
  std::vector<int64_t> parts(3, 0), classes((size_t)o.num_classes, 0);
  for (int64_t v = 0; v < o.num_nodes; ++v) {
    ASSERT_LE(g.split.data<uint8_t>()[v], kTest);
    ++parts[g.split.data<uint8_t>()[v]];
    ++classes[(size_t)g.labels.data<int32_t>()[v]];
  }
  EXPECT_NEAR(parts[kTrain] / 20000.0, 0.8, 0.015);
  EXPECT_NEAR(parts[kValidation] / 20000.0, 0.1, 0.01);
  for (int64_t n : classes) EXPECT_EQ(n, 2000);  // class = rank mod C
  // The split is a function of the node id alone.
  EXPECT_TRUE(same_tensor(g.split, generate_graph(small(9)).split));
}

TEST(GeneratedGraph, FeaturesCarryTheClassButNotAll) {
  // Nearest-centroid accuracy: far above chance (0.1), below certainty, with 10 classes in 16 dims.
  GeneratedGraphOptions o = small();
  o.feature_noise = 0.3;
  const GeneratedGraph g = generate_graph(o);
  const Tensor centroids = class_centroids(o);
  std::vector<float> x((size_t)(o.num_nodes * o.feature_dim));
  generate_feature_rows(o, centroids, g.labels.data<int32_t>(), 0, o.num_nodes, x.data());
  int64_t hits = 0;
  for (int64_t v = 0; v < o.num_nodes; ++v) {
    int best = 0;
    double best_d = 1e300;
    for (int c = 0; c < o.num_classes; ++c) {
      double d = 0;
      for (int64_t j = 0; j < o.feature_dim; ++j) {
        const double diff = x[(size_t)(v * o.feature_dim + j)] - centroids.f32()[c * o.feature_dim + j];
        d += diff * diff;
      }
      if (d < best_d) best_d = d, best = c;
    }
    hits += best == g.labels.data<int32_t>()[v];
  }
  const double accuracy = (double)hits / (double)o.num_nodes;
  EXPECT_GT(accuracy, 0.4);
  EXPECT_LT(accuracy, 0.95);
  // A row is a function of its node alone: rows 100..110 generated apart equal the same rows above.
  std::vector<float> part((size_t)(10 * o.feature_dim));
  generate_feature_rows(o, centroids, g.labels.data<int32_t>(), 100, 110, part.data());
  EXPECT_EQ(std::memcmp(part.data(), x.data() + 100 * o.feature_dim, part.size() * 4), 0);
}

TEST_F(GeneratedGraphTest, WritesALoadableDataSetLabelledGenerated) {
  GeneratedGraphOptions o = small(3);
  o.num_nodes = 3000;
  o.out_dir = file("gen");
  const GeneratedGraphReport r = write_generated_graph(o);
  const GraphDataset d = load_graph_dataset(o.out_dir);
  EXPECT_EQ(d.source, "generated");
  EXPECT_EQ(d.num_nodes(), 3000);
  EXPECT_EQ(d.feature_dim(), 16);
  EXPECT_EQ(d.num_classes(), 10);
  EXPECT_EQ(r.undirected_edges * 2, d.graph.num_directed_edges());
  const GeneratedGraph g = generate_graph(o);
  EXPECT_TRUE(same_tensor(d.graph.indices, g.graph.indices));
  EXPECT_TRUE(same_tensor(d.labels, g.labels));
  std::vector<float> x((size_t)(o.num_nodes * o.feature_dim));
  generate_feature_rows(o, class_centroids(o), g.labels.data<int32_t>(), 0, o.num_nodes, x.data());
  EXPECT_EQ(std::memcmp(d.features.raw(), x.data(), x.size() * 4), 0);
  const nlohmann::json s = nlohmann::json::parse(read_file(o.out_dir + "/summary.json"));
  EXPECT_EQ(s["source"], "generated");
  EXPECT_TRUE(has(s["note"].get<std::string>(), "GENERATED data, not a real graph"));
  EXPECT_EQ(s["nodes"], 3000);
  EXPECT_EQ(s["degree"]["max"], [&] {
    int64_t m = 0;
    for (int64_t v = 0; v < 3000; ++v) m = std::max(m, g.graph.degree(v));
    return m;
  }());
  const std::string names = read_file(o.out_dir + "/names.txt");
  EXPECT_EQ(std::count(names.begin(), names.end(), '\n'), 3000);
  EXPECT_EQ(names.substr(0, 6), "n0\nn1\n");
}

TEST(GeneratedGraph, BadOptionsAreOneLineErrors) {
  GeneratedGraphOptions o = small();
  o.num_classes = 1;
  EXPECT_TRUE(has(message_of([&] { check_options(o); }), "--classes 1 is outside"));
  o = small();
  o.num_nodes = 1;
  EXPECT_TRUE(has(message_of([&] { check_options(o); }), "--nodes 1 is outside"));
  o = small();
  o.gamma = 2;
  EXPECT_TRUE(has(message_of([&] { generate_graph(o); }), "gamma 2 is outside (2, 5]"));
  o = small();
  o.avg_degree = 0;
  EXPECT_TRUE(has(message_of([&] { check_options(o); }), "--avg-degree 0 is outside"));
}
