// A node-classification data set on disk, the form `gannet graph prepare` writes and `graph
// train`, `graph eval` and `graph compress` read. A directory holding:
//   graph.safetensors     indptr I64 [N + 1], indices I32 [E] (gnn/csr_graph.h's invariants);
//                         metadata: "source" ("debian" or "generated"), "num_nodes"
//   features.safetensors  features F32 [N, D] (memory-mapped when read: it may exceed memory)
//   nodes.safetensors     labels I32 [N] in [0, C), split U8 [N] (kTrain, kValidation, kTest);
//                         metadata: "classes" (a JSON array of the C class names)
//   names.txt             one node name per line (the package name), N lines
//   summary.json          what the set holds (nodes, edges, degrees, class counts, baseline)
// Every file is written to a temporary name and renamed into place.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gannet/core/tensor.h"
#include "gannet/gnn/csr_graph.h"

namespace gannet::gnn {

enum SplitPart : uint8_t { kTrain = 0, kValidation = 1, kTest = 2 };

struct GraphDataset {
  std::string dir;
  std::string source;  // "debian" or "generated"
  CsrGraph graph;
  Tensor features;  // f32 [N, D]
  Tensor labels;    // i32 [N]
  Tensor split;     // u8 [N]
  std::vector<std::string> classes;

  int64_t num_nodes() const { return graph.num_nodes; }
  int64_t feature_dim() const { return features.dim(1); }
  int64_t num_classes() const { return (int64_t)classes.size(); }
  // The nodes of one part of the split, ascending.
  std::vector<int32_t> nodes_in(SplitPart part) const;
};

// Reads and checks a data set directory (shapes, dtypes, CSR invariants: offsets in range and
// non-decreasing, neighbour ids in [0, N), labels in [0, C), split values); every problem is one
// gannet::Error naming the file and what is wrong. Neighbour lists are checked in one pass over
// the indices (no copy).
GraphDataset load_graph_dataset(const std::string& dir);

// Writes every file but features.safetensors (graph, nodes, names, summary) into `dir`, creating
// it; `summary` is the summary.json text. Each file is written whole or not at all.
void save_graph_files(const std::string& dir, const std::string& source, const CsrGraph& graph, const Tensor& labels,
                      const Tensor& split, const std::vector<std::string>& classes,
                      const std::vector<std::string>& names, const std::string& summary);
// Writes features.safetensors (f32 [N, D]) into `dir`. A data set whose features do not fit in
// memory (the generated graph) streams them into the same file format instead.
void save_feature_file(const std::string& dir, const Tensor& features);

}  // namespace gannet::gnn
