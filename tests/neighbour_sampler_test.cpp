#include "gannet/gnn/neighbour_sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <utility>

#include "gannet/core/rng.h"
#include "gannet/kernels/gemm.h"
#include "test_files.h"
#include "thread_count.h"

using namespace gannet;
using namespace gannet::gnn;
using namespace gannet::testing;

namespace {

// The CSR of an undirected graph from its edges (either direction, repeats allowed).
CsrGraph make_graph(int64_t n, const std::vector<std::pair<int32_t, int32_t>>& edges) {
  std::vector<std::set<int32_t>> adj((size_t)n);
  for (auto [u, v] : edges)
    if (u != v) adj[(size_t)u].insert(v), adj[(size_t)v].insert(u);
  CsrGraph g;
  g.num_nodes = n;
  g.indptr = Tensor::empty({n + 1}, DType::i64);
  int64_t total = 0;
  for (const auto& a : adj) total += (int64_t)a.size();
  g.indices = Tensor::empty({total}, DType::i32);
  int64_t* off = g.indptr.data<int64_t>();
  int32_t* nb = g.indices.data<int32_t>();
  off[0] = 0;
  for (int64_t v = 0; v < n; ++v) {
    std::copy(adj[(size_t)v].begin(), adj[(size_t)v].end(), nb + off[v]);
    off[v + 1] = off[v] + (int64_t)adj[(size_t)v].size();
  }
  return g;
}

// n nodes; node v gets about v % 23 random edges, so degrees range from 0 to beyond any fan-out.
CsrGraph random_graph(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<std::pair<int32_t, int32_t>> edges;
  for (int32_t v = 0; v < n; ++v)
    for (int k = 0; k < v % 23; ++k) edges.emplace_back(v, (int32_t)rng.below((uint64_t)n));
  return make_graph(n, edges);
}

// A star: node 0 joined to nodes 1 .. leaves.
CsrGraph star(int32_t leaves) {
  std::vector<std::pair<int32_t, int32_t>> edges;
  for (int32_t v = 1; v <= leaves; ++v) edges.emplace_back(0, v);
  return make_graph(leaves + 1, edges);
}

bool is_neighbour(const CsrGraph& g, int32_t v, int32_t u) {
  return std::binary_search(g.neighbours_of(v), g.neighbours_of(v) + g.degree(v), u);
}

// Every structural promise of neighbour_sampler.h for one batch.
void expect_valid_batch(const CsrGraph& g, const std::vector<int>& fanouts, const std::vector<int32_t>& seeds,
                        const MiniBatch& b) {
  const int L = (int)fanouts.size();
  ASSERT_EQ(b.blocks.size(), (size_t)L);
  EXPECT_EQ(b.seeds, seeds);
  ASSERT_GE(b.input_nodes.size(), seeds.size());
  EXPECT_TRUE(std::equal(seeds.begin(), seeds.end(), b.input_nodes.begin()));
  EXPECT_EQ(std::set<int32_t>(b.input_nodes.begin(), b.input_nodes.end()).size(), b.input_nodes.size());
  EXPECT_EQ(b.blocks.back().num_dst, (int64_t)seeds.size());
  EXPECT_EQ(b.blocks.front().num_src, (int64_t)b.input_nodes.size());
  for (int l = 0; l + 1 < L; ++l) EXPECT_EQ(b.blocks[l].num_dst, b.blocks[l + 1].num_src);
  for (int l = 0; l < L; ++l) {
    const SampledBlock& blk = b.blocks[(size_t)l];
    const int fanout = fanouts[(size_t)(L - 1 - l)];
    ASSERT_EQ(blk.offsets.size(), (size_t)blk.num_dst + 1);
    ASSERT_EQ(blk.offsets[0], 0);
    ASSERT_EQ(blk.offsets.back(), (int64_t)blk.src_of.size());
    int64_t next_new = blk.num_dst;  // new sources appear in first-drawn order
    for (int64_t d = 0; d < blk.num_dst; ++d) {
      const int32_t v = b.input_nodes[(size_t)d];
      const int64_t k = blk.offsets[d + 1] - blk.offsets[d];
      EXPECT_EQ(k, fanout < 0 ? g.degree(v) : std::min<int64_t>(g.degree(v), fanout)) << "layer " << l << " node " << v;
      std::set<int32_t> seen;
      for (int64_t e = blk.offsets[d]; e < blk.offsets[d + 1]; ++e) {
        const int32_t s = blk.src_of[(size_t)e];
        ASSERT_TRUE(s >= 0 && s < blk.num_src);
        if (s >= next_new) {
          EXPECT_EQ(s, next_new) << "a source node appears before an earlier-drawn one";
          ++next_new;
        }
        EXPECT_TRUE(is_neighbour(g, v, b.input_nodes[(size_t)s])) << b.input_nodes[(size_t)s] << " of " << v;
        EXPECT_TRUE(seen.insert(s).second) << "node " << v << " sampled a neighbour twice";
      }
    }
    EXPECT_EQ(next_new, blk.num_src);
  }
}

bool same_batch(const MiniBatch& a, const MiniBatch& b) {
  if (a.input_nodes != b.input_nodes || a.blocks.size() != b.blocks.size()) return false;
  for (size_t l = 0; l < a.blocks.size(); ++l)
    if (a.blocks[l].num_dst != b.blocks[l].num_dst || a.blocks[l].num_src != b.blocks[l].num_src ||
        a.blocks[l].offsets != b.blocks[l].offsets || a.blocks[l].src_of != b.blocks[l].src_of)
      return false;
  return true;
}

std::vector<int32_t> first_nodes(int32_t count, int32_t stride, int32_t n) {
  std::vector<int32_t> s;
  for (int32_t i = 0; i < count; ++i) s.push_back((int32_t)((int64_t)i * stride % n));
  return s;
}

}  // namespace

TEST(NeighbourSampler, BatchHoldsFanOutsTrueNeighboursAndFirstDrawnOrder) {
  const CsrGraph g = random_graph(600, 1);
  for (const std::vector<int>& fanouts : {std::vector<int>{5}, {4, 3}, {15, 10, 5}, {3, -1}}) {
    NeighbourSampler sampler(g, fanouts);
    EXPECT_EQ(sampler.num_layers(), (int)fanouts.size());
    const std::vector<int32_t> seeds = first_nodes(40, 13, 600);
    expect_valid_batch(g, fanouts, seeds, sampler.sample(seeds, 7));
  }
}

TEST(NeighbourSampler, LargeFanOutsDrawDistinctNeighbours) {
  // Fan-outs above 32 use a hash set for Floyd's algorithm, not a scan.
  std::vector<std::pair<int32_t, int32_t>> edges;
  for (int32_t v = 1; v <= 300; ++v) edges.emplace_back(0, v), edges.emplace_back(v, 1 + v % 300);
  const CsrGraph g = make_graph(301, edges);
  for (int fanout : {33, 100, 299}) {
    NeighbourSampler sampler(g, {fanout, fanout});
    expect_valid_batch(g, {fanout, fanout}, {0, 5}, sampler.sample({0, 5}, 3));
  }
}

TEST(NeighbourSampler, BoundaryNodesGiveAllTheirNeighbours) {
  // Node 0 isolated, node 1 with two neighbours (below the fan-out), node 2 a hub of 10.
  std::vector<std::pair<int32_t, int32_t>> edges = {{1, 3}, {1, 4}};
  for (int32_t v = 3; v < 13; ++v) edges.emplace_back(2, v);
  const CsrGraph g = make_graph(13, edges);
  NeighbourSampler sampler(g, {4});
  const MiniBatch b = sampler.sample({0, 1, 2}, 11);
  const SampledBlock& blk = b.blocks[0];
  EXPECT_EQ(blk.offsets, (std::vector<int64_t>{0, 0, 2, 6}));
  EXPECT_EQ(b.input_nodes[(size_t)blk.src_of[0]], 3);  // all of node 1's neighbours, ascending
  EXPECT_EQ(b.input_nodes[(size_t)blk.src_of[1]], 4);
  NeighbourSampler all(g, {-1});
  const MiniBatch a = all.sample({2, 0}, 11);
  EXPECT_EQ(a.blocks[0].offsets, (std::vector<int64_t>{0, 10, 10}));
  EXPECT_EQ(a.input_nodes, (std::vector<int32_t>{2, 0, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
}

TEST(NeighbourSampler, SharedNeighboursAreOneSourceNode) {
  // Seeds 0 and 1 both neighbour 2 and 3 only: the sources are the seeds and 2, 3 once each.
  const CsrGraph g = make_graph(4, {{0, 2}, {0, 3}, {1, 2}, {1, 3}});
  NeighbourSampler sampler(g, {2});
  const MiniBatch b = sampler.sample({0, 1}, 5);
  EXPECT_EQ(b.blocks[0].num_src, 4);
  EXPECT_EQ(b.input_nodes, (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(b.blocks[0].src_of, (std::vector<int32_t>{2, 3, 2, 3}));
}

TEST(NeighbourSampler, SameSeedSameBatchWhateverTheThreads) {
  RestoreThreadCount restore;
  const CsrGraph g = random_graph(5000, 2);
  NeighbourSampler sampler(g, {15, 10, 5});
  const std::vector<int32_t> seeds = first_nodes(400, 37, 5000);  // above the parallel threshold
  kernels::set_num_threads(1);
  const MiniBatch one = sampler.sample(seeds, 42);
  kernels::set_num_threads(2);
  const MiniBatch two = sampler.sample(seeds, 42);
  EXPECT_TRUE(same_batch(one, two));
  EXPECT_TRUE(same_batch(two, sampler.sample(seeds, 42)));
  EXPECT_FALSE(same_batch(one, sampler.sample(seeds, 43)));
  expect_valid_batch(g, {15, 10, 5}, seeds, two);
}

TEST(NeighbourSampler, DrawsAreUniformOverNeighbours) {
  // Over many seeds, each of a star's leaves is drawn k / D of the time. The chi-square statistic
  // (D - 1 = 19 degrees of freedom for k = 5: mean 19, less without replacement) stays far below
  // 60, while 100,000 draws that favour half the leaves by 2% give about 200, and Floyd's
  // algorithm with an off-by-one range gives thousands. k = 40 takes the hash-set path.
  for (int k : {5, 40}) {
    const int leaves = k == 5 ? 20 : 60;
    const CsrGraph g = star(leaves);
    NeighbourSampler sampler(g, {k});
    std::vector<int64_t> count((size_t)leaves + 1, 0);
    const int draws = k == 5 ? 100000 : 30000;
    for (int t = 0; t < draws; ++t) {
      const MiniBatch b = sampler.sample({0}, (uint64_t)t);
      for (int32_t s : b.blocks[0].src_of) ++count[(size_t)b.input_nodes[(size_t)s]];
    }
    const double expected = (double)draws * k / leaves;
    double chi2 = 0;
    for (int v = 1; v <= leaves; ++v) chi2 += (count[(size_t)v] - expected) * (count[(size_t)v] - expected) / expected;
    EXPECT_LT(chi2, leaves == 20 ? 60.0 : 130.0) << "fan-out " << k;
  }
}

TEST(NeighbourSampler, BadSeedsAndFanOutsAreOneLineErrors) {
  const CsrGraph g = random_graph(50, 3);
  EXPECT_TRUE(has(message_of([&] { NeighbourSampler(g, {}); }), "no fan-outs"));
  EXPECT_TRUE(has(message_of([&] { NeighbourSampler(g, {5, 0}); }), "fan-out 0 at hop 2 is invalid"));
  EXPECT_TRUE(has(message_of([&] { NeighbourSampler(g, {-2}); }), "fan-out -2 at hop 1"));
  NeighbourSampler sampler(g, {3, 2});
  EXPECT_TRUE(has(message_of([&] { sampler.sample({}, 1); }), "no seed nodes"));
  EXPECT_TRUE(has(message_of([&] { sampler.sample({1, 50}, 1); }),
                  "seed node 50 (position 1) is out of range: the graph has 50 nodes"));
  EXPECT_TRUE(has(message_of([&] { sampler.sample({-1}, 1); }), "seed node -1 (position 0) is out of range"));
  EXPECT_TRUE(has(message_of([&] { sampler.sample({4, 7, 4}, 1); }), "seed node 4 appears twice (positions 0 and 2)"));
}
