// N:M semi-structured sparsity (NxMiFormer, Holmes et al. 2021; NVIDIA's 2:4): along the input
// dimension, every run of m consecutive weights of a row (starting at a multiple of m) holds at most
// n nonzeros. The projection onto that set, in the Euclidean norm, keeps the n entries of largest
// magnitude in each run and zeroes the rest: the step ADMM takes for its auxiliary variable, the
// mask of magnitude pruning, and the layout the packed sparse format stores.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace gannet::compress {

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

// The N:M mask of W (f32 [N, K], row-major, K a multiple of m): 1 for the n entries of largest |w|
// in every run, ties going to the lower column. Throws one line on a shape that does not fit or a
// weight that is not finite.
std::vector<uint8_t> nm_mask(const float* W, int64_t N, int64_t K, const NmPattern& p);
// W projected in place onto the N:M set: the entries outside nm_mask set to 0.
void nm_project(float* W, int64_t N, int64_t K, const NmPattern& p);
// Whether every run of W has at most n nonzeros.
bool satisfies_nm(const float* W, int64_t N, int64_t K, const NmPattern& p);

}  // namespace gannet::compress
