// Mini-batches for GraphSAGE: from a set of seed nodes, sample a fixed number of neighbours per
// node and hop (uniformly, without replacement; all of them when a node has fewer), hop after
// hop, and cut the result into one bipartite block per layer. Fan-outs are given from the seeds
// outwards, as PyG's num_neighbors: "15,10,5" samples 15 neighbours of each seed, 10 of each of
// those, 5 of each of those, for a 3-layer model.
//
// Deterministic: a batch depends only on (graph, fan-outs, seeds, seed), never on the number of
// threads (each node's draw has its own random stream, derived from the seed, the hop and the
// node's position in its hop).
#pragma once
#include <cstdint>
#include <vector>

#include "gannet/gnn/csr_graph.h"

namespace gannet::gnn {

// One layer's bipartite graph. Its destination nodes are the first num_dst of its source nodes
// (each node's own row is available to the layer), so num_src >= num_dst. The sampled neighbours
// of destination d are src_of[offsets[d] .. offsets[d + 1]), local indices into the source nodes.
struct SampledBlock {
  int64_t num_dst = 0, num_src = 0;
  std::vector<int64_t> offsets;  // [num_dst + 1]
  std::vector<int32_t> src_of;   // [offsets[num_dst]], each in [0, num_src)
};

struct MiniBatch {
  // Global ids of the first layer's source nodes: the rows of the feature matrix to gather. Its
  // first seeds.size() entries are the seeds themselves, in order; the nodes of each hop follow
  // those of the hop before, each node once, in the order they were first drawn.
  std::vector<int32_t> input_nodes;
  // blocks[0] is the input layer's (its sources are all of input_nodes); blocks.back()'s
  // destinations are the seeds. blocks[l].num_dst == blocks[l + 1].num_src.
  std::vector<SampledBlock> blocks;
  std::vector<int32_t> seeds;
};

class NeighbourSampler {
 public:
  // fanouts: per hop from the seeds outwards, each >= 1 (or -1: every neighbour).
  NeighbourSampler(const CsrGraph& graph, std::vector<int> fanouts);
  // Samples the blocks of `seeds` (distinct node ids) under `seed`, on the kernels' threads. It
  // keeps no state between calls: several threads may sample at once.
  MiniBatch sample(const std::vector<int32_t>& seeds, uint64_t seed) const;
  int num_layers() const { return (int)fanouts_.size(); }

 private:
  const CsrGraph& graph_;
  std::vector<int> fanouts_;
};

}  // namespace gannet::gnn
