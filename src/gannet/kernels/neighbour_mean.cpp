#include "gannet/kernels/neighbour_mean.h"

#include <cstring>

#include "gannet/core/error.h"

namespace gannet::kernels {

void check_neighbour_lists(const int64_t* offsets, const int32_t* src, int64_t num_dst, int64_t num_src) {
  GANNET_CHECK(offsets[0] == 0, "neighbour lists: offsets[0] is ", offsets[0], ", not 0");
  for (int64_t d = 0; d < num_dst; ++d)
    GANNET_CHECK(offsets[d + 1] >= offsets[d], "neighbour lists: offsets decrease at destination ", d);
  for (int64_t j = 0; j < offsets[num_dst]; ++j)
    GANNET_CHECK(src[j] >= 0 && src[j] < num_src, "neighbour lists: source ", src[j], " is outside [0, ", num_src, ")");
}

TransposedNeighbours transpose_neighbours(const int64_t* offsets, const int32_t* src, int64_t num_dst,
                                          int64_t num_src) {
  TransposedNeighbours t;
  const int64_t E = offsets[num_dst];
  t.offsets.assign(num_src + 1, 0);
  for (int64_t j = 0; j < E; ++j) ++t.offsets[src[j] + 1];
  for (int64_t s = 0; s < num_src; ++s) t.offsets[s + 1] += t.offsets[s];
  t.dst.resize(E);
  t.weight.resize(E);
  std::vector<int64_t> next(t.offsets.begin(), t.offsets.end() - 1);
  for (int64_t d = 0; d < num_dst; ++d) {  // ascending d: each source's list comes out sorted
    const float w = 1.f / (float)(offsets[d + 1] - offsets[d]);
    for (int64_t j = offsets[d]; j < offsets[d + 1]; ++j) {
      const int64_t at = next[src[j]]++;
      t.dst[at] = (int32_t)d;
      t.weight[at] = w;
    }
  }
  return t;
}

void neighbour_mean(const float* x, const int64_t* offsets, const int32_t* src, int64_t num_dst, int64_t C, float* y) {
  // The row sums are written out here rather than through kernels/bias.h's add_inplace, whose
  // calls open a parallel region each: per neighbour, that cost more than the sum.
#pragma omp parallel for schedule(dynamic, 64)
  for (int64_t d = 0; d < num_dst; ++d) {
    float* out = y + d * C;
    std::memset(out, 0, sizeof(float) * C);
    const int64_t n = offsets[d + 1] - offsets[d];
    for (int64_t j = offsets[d]; j < offsets[d + 1]; ++j) {
      const float* row = x + (int64_t)src[j] * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) out[c] += row[c];
    }
    if (n > 1) {
      const float w = 1.f / (float)n;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) out[c] *= w;
    }
  }
}

void neighbour_mean_backward(const float* dy, const TransposedNeighbours& t, int64_t C, float* dx) {
  const int64_t num_src = (int64_t)t.offsets.size() - 1;
#pragma omp parallel for schedule(dynamic, 64)
  for (int64_t s = 0; s < num_src; ++s) {
    float* out = dx + s * C;
    for (int64_t j = t.offsets[s]; j < t.offsets[s + 1]; ++j) {
      const float* g = dy + (int64_t)t.dst[j] * C;
      const float w = t.weight[j];
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) out[c] += w * g[c];
    }
  }
}

namespace ref {

void neighbour_mean(const float* x, const int64_t* offsets, const int32_t* src, int64_t num_dst, int64_t C, float* y) {
  for (int64_t d = 0; d < num_dst; ++d) {
    const int64_t n = offsets[d + 1] - offsets[d];
    for (int64_t c = 0; c < C; ++c) {
      float sum = 0.f;
      for (int64_t j = offsets[d]; j < offsets[d + 1]; ++j) sum += x[(int64_t)src[j] * C + c];
      y[d * C + c] = n > 1 ? sum * (1.f / (float)n) : sum;
    }
  }
}

void neighbour_mean_backward(const float* dy, const int64_t* offsets, const int32_t* src, int64_t num_dst, int64_t C,
                             float* dx) {
  for (int64_t d = 0; d < num_dst; ++d) {
    const float w = 1.f / (float)(offsets[d + 1] - offsets[d]);
    for (int64_t j = offsets[d]; j < offsets[d + 1]; ++j)
      for (int64_t c = 0; c < C; ++c) dx[(int64_t)src[j] * C + c] += w * dy[d * C + c];
  }
}

}  // namespace ref

}  // namespace gannet::kernels
