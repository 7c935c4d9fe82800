// An undirected graph in compressed sparse rows, the form every part of gnn/ reads: the
// neighbours of node v are indices[indptr[v] .. indptr[v + 1]), each undirected edge stored in
// both directions, no self loops, no repeated neighbours, neighbours of a node in ascending order.
// The two arrays are tensors, so that a graph read from a file is memory-mapped, not copied.
#pragma once
#include <cstdint>

#include "gannet/core/tensor.h"

namespace gannet::gnn {

struct CsrGraph {
  int64_t num_nodes = 0;
  Tensor indptr;   // i64 [num_nodes + 1], indptr[0] = 0, non-decreasing
  Tensor indices;  // i32 [indptr[num_nodes]]

  int64_t num_directed_edges() const { return num_nodes == 0 ? 0 : offsets()[num_nodes]; }
  const int64_t* offsets() const { return indptr.data<int64_t>(); }
  const int32_t* neighbours() const { return indices.data<int32_t>(); }
  int64_t degree(int64_t v) const { return offsets()[v + 1] - offsets()[v]; }
  const int32_t* neighbours_of(int64_t v) const { return neighbours() + offsets()[v]; }
};

}  // namespace gannet::gnn
