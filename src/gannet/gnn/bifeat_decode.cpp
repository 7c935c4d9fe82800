#include "gannet/gnn/bifeat_decode.h"

#include <cstring>

#include "gannet/core/dispatch.h"

namespace gannet::gnn {

namespace ref {

void bifeat_decode_rows(const BiFeatTables& t, const int32_t* nodes, int64_t n, float* out) {
  const int64_t D = t.dim, M = t.pq_subvectors, ds = M > 0 ? D / M : 0, C = int64_t(1) << (t.sq_bits - 1);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t v = nodes[i];
    const uint64_t word = t.sq_mask[v >> 6], below = word & ((uint64_t(1) << (v & 63)) - 1);
    const int64_t sq_row = (int64_t)t.sq_rank[v >> 6] + __builtin_popcountll(below);
    float* o = out + i * D;
    if ((word >> (v & 63)) & 1) {
      const uint8_t* c = t.sq_codes + sq_row * t.sq_row_bytes;
      for (int64_t d = 0; d < D; ++d) {
        const int code = t.sq_bits == 8 ? c[d] : (c[d / 2] >> (4 * (d & 1))) & 15;
        const float mag = t.sq_magnitudes[d * C + (code & (C - 1))];
        o[d] = (code & C) ? -mag : mag;
      }
    } else if (t.pq_codebook_bits == 8) {
      const uint8_t* c = t.pq_codes + (v - sq_row) * M;
      for (int64_t m = 0; m < M; ++m) {
        const int8_t* q = t.pq_codebooks_i8 + (m * t.pq_centroids + c[m]) * ds;
        for (int64_t j = 0; j < ds; ++j) o[m * ds + j] = (float)q[j] * t.pq_scales[m * ds + j];
      }
    } else {
      const uint8_t* c = t.pq_codes + (v - sq_row) * M;
      for (int64_t m = 0; m < M; ++m)
        std::memcpy(o + m * ds, t.pq_codebooks + (m * t.pq_centroids + c[m]) * ds, (size_t)ds * sizeof(float));
    }
  }
}

}  // namespace ref

void bifeat_decode_rows(const BiFeatTables& t, const int32_t* nodes, int64_t n, float* out) {
  GANNET_DISPATCH(bifeat_decode_rows, t, nodes, n, out);
}

}  // namespace gannet::gnn
