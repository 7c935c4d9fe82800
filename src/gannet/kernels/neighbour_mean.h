// GraphSAGE's mean aggregator: for each destination node, the mean of the rows of its sampled
// neighbours. Neighbour lists are in CSR form (offsets [num_dst + 1], src [offsets[num_dst]], each
// in [0, num_src)); a node without neighbours gets a zero row. The backward pass spreads each
// destination's gradient, divided by its neighbour count, over its neighbours' rows; it runs over
// the transposed lists (each source's destinations) so that threads own whole rows and nothing
// races. Parallel over output rows.
#pragma once
#include <cstdint>
#include <vector>

namespace gannet::kernels {

// The lists of a block transposed: for each source node, the destinations that sampled it, each
// with the weight 1 / (that destination's neighbour count).
struct TransposedNeighbours {
  std::vector<int64_t> offsets;  // [num_src + 1]
  std::vector<int32_t> dst;      // destinations, ascending per source
  std::vector<float> weight;     // 1 / degree of each dst
};

// Throws gannet::Error unless the lists are well formed (offsets from 0, non-decreasing; every
// src in [0, num_src)).
void check_neighbour_lists(const int64_t* offsets, const int32_t* src, int64_t num_dst, int64_t num_src);
TransposedNeighbours transpose_neighbours(const int64_t* offsets, const int32_t* src, int64_t num_dst,
                                          int64_t num_src);

// y[d, :] = mean over j in [offsets[d], offsets[d + 1]) of x[src[j], :]   (0 when empty).
// x [num_src, C], y [num_dst, C]
void neighbour_mean(const float* x, const int64_t* offsets, const int32_t* src, int64_t num_dst, int64_t C, float* y);
// dx[s, :] += sum over the destinations d of s of dy[d, :] / degree(d).   dy [num_dst, C], dx [num_src, C]
void neighbour_mean_backward(const float* dy, const TransposedNeighbours& t, int64_t C, float* dx);

namespace ref {
void neighbour_mean(const float* x, const int64_t* offsets, const int32_t* src, int64_t num_dst, int64_t C, float* y);
// The scatter form, straight from the definition: sequential over destinations.
void neighbour_mean_backward(const float* dy, const int64_t* offsets, const int32_t* src, int64_t num_dst, int64_t C,
                             float* dx);
}  // namespace ref

}  // namespace gannet::kernels
