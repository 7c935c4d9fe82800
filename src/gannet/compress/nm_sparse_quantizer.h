// NxMiFormer's compressed form of a weight matrix: N:M sparsity along the input dimension
// (compress/nm_mask.h) with the kept values quantized symmetrically to int8 or int4 by
// ZeroQuant's weight quantizer (compress/quantizer.h), stored packed (io::NmSparseTensor: the kept
// values and their positions only).
//
// The matrix is projected onto the N:M set first and the projection quantized as a dense matrix, so
// that the sparse form holds exactly the integers and scales of quantize_weights(projected W): a
// group's scale comes from its kept entries, and fake_quantize_weights of the projection gives the
// same numbers in f32 (what training with straight-through estimators sees).
#pragma once
#include <cstdint>
#include <string>

#include "gannet/compress/nm_mask.h"
#include "gannet/io/nm_sparse_tensor.h"

namespace gannet::compress {

struct NmSparseSpec {
  NmPattern pattern;
  int bits = 8;        // 8 or 4
  int64_t group = 0;   // input columns per scale, a multiple of 32 and of m; 0 = one scale per row

  // The group used for input width K (K for per-row scales or a group at least as wide).
  int64_t group_for(int64_t K) const { return group == 0 || group >= K ? K : group; }
  // Throws one line naming `what` on a bad pattern, bits other than 8 or 4, or a group that is not
  // 0 or a positive multiple of 32 and of m.
  void validate(const std::string& what) const;
  std::string describe() const;  // e.g. "2:4 int8 per-row", "1:4 int4 g64"
};

// Projects W (f32 [N, K], row-major; K a multiple of 32, of m and of the group) onto the pattern and
// quantizes the kept entries; throws one line on a shape that does not fit or a weight that is not
// finite.
io::NmSparseTensor quantize_nm_sparse(const float* W, int64_t N, int64_t K, const NmSparseSpec& spec);

}  // namespace gannet::compress
