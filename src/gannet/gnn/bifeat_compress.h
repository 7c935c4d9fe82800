// BiFeat (arXiv 2207.14696) compression of a data set's node features: the most important nodes
// in the log-SQ level (gnn/log_scalar_quantizer.h), every other node in the PQ level
// (gnn/product_quantizer.h), written as one file that BiFeatStore (gnn/feature_store.h) maps.
// Importance is the node's degree, or a score per node given by the caller (such as how often a
// sampler touched it): the high-degree nodes are the ones mini-batches gather most often, so
// their precision counts most.
//
// The defaults and their ratio, for D = 128 (raw: 512 bytes a node): PQ alone, M = 16
// sub-vectors of 8 floats, K = 256 centroids, codebooks in 8 bits (one f32 scale per column):
//   PQ codes: 16 bytes a node; node map (a bit per node, a 32-bit rank per 64): 0.19 bytes a node
//   fixed: codebooks 32.5 KiB, the empty SQ level's ranges and 4-bit decode table 6 KiB, header
//   per node 16.19 bytes: 31.6x at N = 1M, 30.44x at the Debian graph's 63,697 nodes, 30x from
//   N = 46k. On the Debian graph this layout's GraphSAGE test accuracy is 0.80 points below the
//   raw features (three seeds, docs/results.md); the two-level layout BiFeat describes (8-bit SQ
//   on the top 4% by degree, PQ M = 8: --sq-fraction 0.04 --sq-bits 8 --pq-subvectors 8) is
//   smaller (31.8x at 64k nodes, 39.4x at 50M) but 1.46 points below.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "gannet/core/tensor.h"
#include "gannet/gnn/csr_graph.h"
#include "gannet/gnn/feature_store.h"

namespace gannet::gnn {

struct BiFeatOptions {
  double sq_fraction = 0;       // of the nodes, in the log-SQ level (rounded to nodes)
  int sq_bits = 4;              // 8 or 4 (4: the decode table is 4 KiB instead of 64, even when empty)
  int64_t pq_subvectors = 16;   // M; D must be a multiple of it
  int codebook_bits = 8;        // PQ codebooks in f32 (32) or 8 bits with a scale per column (8)
  int kmeans_iters = 25;        // Lloyd iterations per sub-space
  int64_t kmeans_sample = 65536;  // PQ rows k-means trains on (all of them when fewer)
  uint64_t seed = 0;            // of the k-means sample and seeding
  std::vector<double> importance;  // per node, higher = SQ first; empty: the degree
  std::function<void(const std::string&)> progress;  // notes while it runs; may be empty
};

// One level's share of the store and its reconstruction error over all of its nodes.
struct LevelReport {
  int64_t rows = 0;
  int64_t bytes = 0;          // resident
  double ratio = 0;           // raw f32 bytes of its rows / bytes
  double relative_mse = 0;    // sum ||x - x_hat||^2 / sum ||x||^2
  double mean_cosine = 0;     // over rows with x != 0 (0 where x_hat == 0)
};

struct BiFeatReport {
  std::string path;
  int64_t num_nodes = 0, dim = 0;
  LevelReport sq, pq, all;  // all: every node, every byte (node map and header included)
  int64_t map_bytes = 0, other_bytes = 0;
  double seconds_sq = 0, seconds_kmeans = 0, seconds_pq_encode = 0;
};

// Compresses `features` (f32 [N, D], N = graph.num_nodes; may be memory-mapped: rows are read in
// ascending order, in chunks) into `path`, written whole or not at all, then maps the file and
// measures it. Throws a one-line gannet::Error on bad options or a non-finite feature.
BiFeatReport compress_features(const Tensor& features, const CsrGraph& graph, const std::string& path,
                               const BiFeatOptions& opt = {});

// The SQ level's nodes: the round(fraction * N) most important (ties: the lower id), ascending.
std::vector<int32_t> select_sq_nodes(const std::vector<double>& importance, double fraction);
// Fills the error fields of `report` by gathering every node from `store` and comparing it with
// its row of `features`, and the byte fields from the store.
void measure_reconstruction(const BiFeatStore& store, const Tensor& features, BiFeatReport& report);

}  // namespace gannet::gnn
