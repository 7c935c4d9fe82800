// Accuracy and loss of a GraphSAGE model (or its MLP baseline) on a set of nodes: each batch of
// nodes is sampled as in training (the same fan-outs, a fixed seed per batch, so the figures are
// reproducible) and classified without dropout. Shared by the graph task's validation and
// `gannet graph eval`.
#pragma once
#include <cstdint>
#include <vector>

#include "gannet/gnn/feature_store.h"
#include "gannet/gnn/graph_dataset.h"
#include "gannet/gnn/neighbour_sampler.h"
#include "gannet/models/graphsage.h"

namespace gannet::train {

struct GraphEval {
  int64_t nodes = 0;
  double loss = 0;      // mean cross-entropy
  double accuracy = 0;  // share of nodes whose arg-max class is their label
};

// The seeds' input rows, gathered from `store`: [batch.input_nodes, D] (the MLP's: the seeds').
Tensor gather_inputs(const gnn::FeatureStore& store, const gnn::MiniBatch& batch);
// The batch of `seeds` a model reads: sampled blocks for "sage", the seeds alone for "mlp".
gnn::MiniBatch graph_batch(const models::GraphSage& model, const gnn::NeighbourSampler& sampler,
                           const std::vector<int32_t>& seeds, uint64_t seed);

// Over `nodes` (all of them when max_nodes is 0, else the first max_nodes), batch nodes at a time.
GraphEval evaluate_graph(const models::GraphSage& model, const gnn::GraphDataset& data, const gnn::FeatureStore& store,
                         const gnn::NeighbourSampler& sampler, const std::vector<int32_t>& nodes, int64_t batch,
                         int64_t max_nodes, uint64_t seed);

}  // namespace gannet::train
