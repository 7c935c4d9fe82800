// A GENERATED node-classification data set shaped like ogbn-papers100M (111M papers, 128-dim
// features, 172 subject classes, about 15 citations per paper), for speed and memory figures at a
// scale that no data set this project downloads reaches. It is synthetic data, and every file
// says so: graph.safetensors's "source" is "generated", summary.json opens with a note.
//
// The model, all of it a function of the seed:
//  - degrees (Chung-Lu): each of avg_degree * N / 2 edges has its ends drawn with probability
//    proportional to w(rank) = (rank + r0)^(-1 / (gamma - 1)), where a node's rank is its place
//    under a fixed permutation of the ids (so that the hubs are spread over the id range). r0 sets
//    the largest expected degree to sqrt(avg_degree * N), the structural cutoff below which such
//    graphs have few repeated edges. Self loops and repeated edges are dropped, so the mean degree
//    comes out a little below avg_degree (summary.json has the figures).
//  - classes: a node's class is its rank modulo C, so each class spans every degree.
//  - homophily: with probability `homophily` an edge's second end is drawn from the first end's
//    class (by the same weights), otherwise from all nodes.
//  - features: the class centroid (N(0, 1/D) per coordinate: a norm of about 1) plus N(0,
//    feature_noise^2) per coordinate: informative alone, but a node's neighbours add to it.
//  - split: a hash of the node id: 80% kTrain, 10% kValidation, 10% kTest.
#pragma once
#include <cstdint>
#include <string>

#include "gannet/core/tensor.h"
#include "gannet/gnn/csr_graph.h"

namespace gannet::gnn {

struct GeneratedGraphOptions {
  std::string out_dir = "data/generated-graph";
  int64_t num_nodes = 50'000'000;
  int64_t feature_dim = 128;
  int num_classes = 172;
  // Neighbours per node drawn (avg_degree * N / 2 undirected edges) before self loops and repeats
  // are dropped: 30 is papers100M's ~15 citations per paper. The CSR takes about 4 * avg_degree
  // bytes per node (6 GB at 50M nodes).
  double avg_degree = 30;
  double gamma = 2.3;          // the degree distribution's power-law exponent, in (2, 5]
  double homophily = 0.6;      // probability that an edge's second end is drawn from its first end's class
  // Standard deviation of each feature coordinate around its class centroid. At 0.4 (D = 128, C =
  // 172) the nearest centroid classifies 41% of the nodes, near an MLP on papers100M (47%); the
  // centroid nearest to the average of a node's features and its neighbours' mean, about 80%.
  double feature_noise = 0.4;
  uint64_t seed = 0;
};

// Throws a one-line error naming the first option out of range.
void check_options(const GeneratedGraphOptions& options);

// Everything of the data set but the features, which are generated row by row (they may not fit
// in memory).
struct GeneratedGraph {
  CsrGraph graph;
  Tensor labels;  // i32 [N]
  Tensor split;   // u8 [N]
};

// Generates the graph in two passes over the same edges (count the degrees, then fill the rows),
// so that no edge list is held beside the CSR: peak memory is the CSR itself, 8 bytes per node
// and 4 bytes per drawn neighbour entry. Multi-threaded; the result does not depend on the number
// of threads. Writes progress lines to stderr when `progress`.
GeneratedGraph generate_graph(const GeneratedGraphOptions& options, bool progress = false);

// The class centroids: f32 [C, D].
Tensor class_centroids(const GeneratedGraphOptions& options);
// Writes the features of nodes [begin, end) to out (f32 [end - begin, D], row-major): each row a
// function of (seed, node, its label) only. `centroids` is class_centroids(options).
void generate_feature_rows(const GeneratedGraphOptions& options, const Tensor& centroids, const int32_t* labels,
                           int64_t begin, int64_t end, float* out);

struct GeneratedGraphReport {
  int64_t nodes = 0, undirected_edges = 0;
  uint64_t feature_bytes = 0;
  double seconds = 0;
  std::string summary;  // the summary.json text
};

// Generates the data set and writes its directory (gnn/graph_dataset.h's format), the features
// streamed to features.safetensors chunk by chunk.
GeneratedGraphReport write_generated_graph(const GeneratedGraphOptions& options, bool progress = false);

}  // namespace gannet::gnn
