// Data for the BiFeat tests: a random graph whose degrees are skewed (a few hubs, as real graphs
// have) and feature matrices with heavy tails, zeros and columns of different scales.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>
#include <vector>

#include "gannet/core/rng.h"
#include "gannet/core/tensor.h"
#include "gannet/gnn/csr_graph.h"

namespace gannet::testing {

// Each node links to its successor on a ring and to `extra` random nodes drawn towards the low
// ids (u = N * r^3): low ids become hubs. Undirected, sorted, no loops or repeats.
inline gnn::CsrGraph skewed_graph(int64_t n, int extra, uint64_t seed) {
  Rng rng(seed);
  std::vector<std::set<int32_t>> adj((size_t)n);
  auto link = [&](int64_t a, int64_t b) {
    if (a == b) return;
    adj[a].insert((int32_t)b);
    adj[b].insert((int32_t)a);
  };
  for (int64_t v = 0; v < n; ++v) {
    if (n > 1) link(v, (v + 1) % n);
    for (int e = 0; e < extra; ++e) {
      const float r = rng.uniform();
      link(v, std::min<int64_t>(n - 1, (int64_t)((double)n * r * r * r)));
    }
  }
  gnn::CsrGraph g;
  g.num_nodes = n;
  g.indptr = Tensor::empty({n + 1}, DType::i64);
  int64_t edges = 0;
  for (const auto& a : adj) edges += (int64_t)a.size();
  g.indices = Tensor::empty({edges}, DType::i32);
  int64_t* p = g.indptr.data<int64_t>();
  int32_t* idx = g.indices.data<int32_t>();
  p[0] = 0;
  for (int64_t v = 0; v < n; ++v) {
    std::copy(adj[v].begin(), adj[v].end(), idx + p[v]);
    p[v + 1] = p[v] + (int64_t)adj[v].size();
  }
  return g;
}

// [n, d]: normal values cubed (heavy tails), column j scaled by 4^(j % 5 - 2), about 5% zeros.
inline Tensor heavy_tailed_features(int64_t n, int64_t d, uint64_t seed) {
  Rng rng(seed);
  Tensor t = Tensor::empty({n, d});
  float* x = t.f32();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) {
      const float z = rng.normal();
      x[i * d + j] = rng.uniform() < 0.05f ? 0.f : z * z * z * std::pow(4.f, (float)(j % 5) - 2.f);
    }
  }
  return t;
}

// [n, d] standard normal values.
inline Tensor normal_features(int64_t n, int64_t d, uint64_t seed) {
  Rng rng(seed);
  Tensor t = Tensor::empty({n, d});
  for (int64_t i = 0; i < n * d; ++i) t.f32()[i] = rng.normal();
  return t;
}

}  // namespace gannet::testing
