// k-means for the codebooks of product quantization (gnn/product_quantizer.h): k-means++ seeding
// from a seed, then Lloyd iterations whose assignment step is a GEMM (||x||^2 - 2 x.c + ||c||^2,
// the products by OpenBLAS), multi-threaded over fixed blocks of rows so that the result does not
// depend on the thread count.
#pragma once
#include <cstdint>
#include <vector>

namespace gannet::gnn {

// k centroids of dimension d, prepared for nearest-centroid queries (their squared norms are
// computed once).
class CentroidSet {
 public:
  CentroidSet(const float* centroids, int64_t k, int64_t d);
  int64_t k() const { return k_; }
  int64_t d() const { return d_; }
  const float* data() const { return centroids_.data(); }

  // For rows x[i * ld .. i * ld + d), i in [0, n): the index of the nearest centroid (squared
  // Euclidean; ties go to the lower index) and, when dist2 is not null, its squared distance
  // (clamped at 0: the expansion can round slightly below). One thread; callers split the rows.
  void assign(const float* x, int64_t n, int64_t ld, int32_t* index, float* dist2) const;
  // As assign, over the rows in blocks of kBlockRows on all threads.
  void assign_parallel(const float* x, int64_t n, int64_t ld, int32_t* index, float* dist2) const;

  // Rows per GEMM in assign: the block's distances ([kBlockRows, k] floats) stay in L2.
  static constexpr int64_t kBlockRows = 256;

 private:
  std::vector<float> centroids_;  // [k, d]
  std::vector<float> norms_;      // [k], ||c||^2
  int64_t k_ = 0, d_ = 0;
};

struct KMeansOptions {
  int64_t k = 256;
  int iterations = 25;  // Lloyd iterations at most; stops early when no assignment changes
  uint64_t seed = 0;    // of the k-means++ draws
};

struct KMeansResult {
  std::vector<float> centroids;  // [k, d]
  // The inertia (sum of squared distances to the nearest centroid) after each assignment step:
  // non-increasing up to rounding, as Lloyd's algorithm guarantees.
  std::vector<double> inertia;
  int64_t reseeded = 0;  // empty clusters moved onto the farthest points, over the run
};

// Clusters rows x[i * ld .. i * ld + d), i in [0, n). With n <= k the centroids are the rows
// themselves (the first n; the rest repeat them), which quantizes them exactly.
KMeansResult kmeans(const float* x, int64_t n, int64_t d, int64_t ld, const KMeansOptions& opt);

// k-means++ seeding alone (D^2 sampling: each next centroid is a row drawn with probability
// proportional to its squared distance to the nearest centroid so far); [k, d]. Needs n >= 1.
std::vector<float> kmeans_plus_plus(const float* x, int64_t n, int64_t d, int64_t ld, int64_t k, uint64_t seed);

}  // namespace gannet::gnn
