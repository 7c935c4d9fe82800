// An N:M sparsity pattern (NxMiFormer; NVIDIA's 2:4): along a weight row's input dimension, every
// run of m consecutive columns (starting at a multiple of m) holds at most n nonzeros. A value type
// shared by the masks (compress/nm_mask.h), the stored form (kernels/nm_sparse_weights.h,
// io/nm_sparse_tensor.h) and configs.
#pragma once
#include <string>

namespace gannet {

// The widest run gannet packs: a kept entry's position in its run takes index_bits() <= 4 bits.
inline constexpr int kMaxNmRun = 16;

struct NmPattern {
  int n = 2;  // kept per run
  int m = 4;  // run length

  // "N:M", e.g. "2:4"; a one-line error naming `what` otherwise (and for 0 < n < m <= 16 not holding).
  static NmPattern parse(const std::string& text, const std::string& what);
  void validate(const std::string& what) const;
  // Bits of a kept entry's position in its run: ceil(log2 m).
  int index_bits() const;
  double density() const { return (double)n / (double)m; }
  std::string describe() const;  // "2:4"
  bool operator==(const NmPattern& o) const { return n == o.n && m == o.m; }
};

}  // namespace gannet
