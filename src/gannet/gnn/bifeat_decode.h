// The fused decode of BiFeat's gather (gnn/feature_store.h): for each node asked for, its level
// and row from the node map, then its codes decoded straight into the output row, with no
// decompressed copy of the matrix anywhere. PQ: M codebook rows of D/M floats copied (8-bit
// codebooks: D/M bytes widened and multiplied by their column's scale); log-SQ: a
// look-up per value in the column's magnitude table, the sign put back by one XOR. Scalar
// reference and AVX2 / AVX-512 versions chosen at run time; they are equal bitwise (a decode only
// copies and looks up, or rounds one product of an integer and a float, the same in every version).
#pragma once
#include <cstdint>

namespace gannet::gnn {

// Borrowed views of a BiFeat store's arrays.
struct BiFeatTables {
  int64_t num_nodes = 0, dim = 0;
  // The node map: bit v % 64 of sq_mask[v / 64] is set when node v is in the SQ level. Its row
  // there is sq_rank[v / 64] + the set bits below it in its word; a PQ node's row is v minus that.
  const uint64_t* sq_mask = nullptr;
  const uint32_t* sq_rank = nullptr;
  // SQ level (gnn/log_scalar_quantizer.h's codes and magnitude table).
  int sq_bits = 8;
  int64_t sq_row_bytes = 0;
  const uint8_t* sq_codes = nullptr;       // [SQ rows, sq_row_bytes]
  const float* sq_magnitudes = nullptr;    // [dim, 2^(sq_bits - 1)]
  // PQ level (gnn/product_quantizer.h's codes and codebooks).
  int64_t pq_subvectors = 0, pq_centroids = 0;
  const uint8_t* pq_codes = nullptr;       // [PQ rows, pq_subvectors]
  int pq_codebook_bits = 32;               // 32: pq_codebooks; 8: pq_codebooks_i8 and pq_scales
  const float* pq_codebooks = nullptr;     // [pq_subvectors, pq_centroids, dim / pq_subvectors]
  const int8_t* pq_codebooks_i8 = nullptr; // the same shape; value = q * pq_scales[column]
  const float* pq_scales = nullptr;        // [dim]: column j of sub-space m at m * dim / pq_subvectors + j
};

// out[i * dim ..] = the decoded features of node nodes[i], i in [0, n), on the calling thread.
// Node ids must lie in [0, num_nodes) and codes be well formed: the store checks both.
void bifeat_decode_rows(const BiFeatTables& t, const int32_t* nodes, int64_t n, float* out);

namespace ref {
void bifeat_decode_rows(const BiFeatTables& t, const int32_t* nodes, int64_t n, float* out);
}
namespace avx2 {
void bifeat_decode_rows(const BiFeatTables& t, const int32_t* nodes, int64_t n, float* out);
}
namespace avx512 {
void bifeat_decode_rows(const BiFeatTables& t, const int32_t* nodes, int64_t n, float* out);
}

}  // namespace gannet::gnn
