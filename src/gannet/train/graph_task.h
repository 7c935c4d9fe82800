// Node classification with GraphSAGE (task "graph"): a data set of `gannet graph prepare`
// (<data.dir>, gnn/graph_dataset.h), features read through a store (the raw f32 matrix or a
// BiFeat file of `gannet graph compress`), mini-batches of seed nodes sampled by
// gnn::NeighbourSampler with graph.fanouts.
//
// Data order: epochs over the training nodes, each a fresh permutation; a micro-batch is the next
// train_micro_batch_size_per_gpu nodes of it (an epoch's last batch may be short). Everything a
// micro-batch draws (its nodes, its neighbours, its dropout masks) follows from the seed and its
// index, so a resumed run draws what an uninterrupted one would. Validation: every validation
// node (or the first eval.batches batches of them): val_loss, val_accuracy.
#pragma once
#include <memory>

#include "gannet/train/train_config.h"
#include "gannet/train/train_task.h"

namespace gannet::train {

std::unique_ptr<TrainTask> make_graph_task(const TrainConfig& config);

}  // namespace gannet::train
