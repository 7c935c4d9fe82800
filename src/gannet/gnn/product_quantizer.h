// BiFeat's second level, for the less important nodes: product quantization. A row of D floats is
// cut into M sub-vectors of D/M floats; each is replaced by the index (one byte) of its nearest
// centroid among the K <= 256 of its sub-space, which k-means (gnn/kmeans.h) learns from a sample
// of rows. A row costs M bytes instead of 4D (D = 128, M = 8: 8 bytes for 512, 64x); the codebooks
// hold K * D floats whatever M (128 KiB for D = 128).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "gannet/gnn/kmeans.h"

namespace gannet::gnn {

struct PqOptions {
  int64_t subvectors = 8;   // M; D must be a multiple of it
  int64_t centroids = 256;  // K per sub-space, 1..256 (a code is one byte)
  int iterations = 25;      // Lloyd iterations per sub-space
  uint64_t seed = 0;        // sub-space m seeds its k-means++ with seed + m
  std::function<void(const std::string&)> progress;  // a note per sub-space trained; may be empty
};

class ProductQuantizer {
 public:
  static constexpr int64_t kMaxCentroids = 256;

  // codebooks: [subvectors, centroids, dim / subvectors], sub-space-major. Throws on bad shapes.
  ProductQuantizer(int64_t dim, int64_t subvectors, int64_t centroids, std::vector<float> codebooks);
  // One k-means per sub-space over the rows of `sample` ([n, dim], contiguous), n >= 1. With fewer
  // rows than centroids the rows themselves are the centroids (kmeans() says how).
  static ProductQuantizer train(const float* sample, int64_t n, int64_t dim, const PqOptions& opt);

  int64_t dim() const { return dim_; }
  int64_t subvectors() const { return subvectors_; }
  int64_t sub_dim() const { return dim_ / subvectors_; }
  int64_t centroids() const { return centroids_; }
  const std::vector<float>& codebooks() const { return codebooks_; }
  const float* centroid(int64_t m, int64_t c) const { return codebooks_.data() + (m * centroids_ + c) * sub_dim(); }
  // The inertia of each sub-space's last assignment step in training (empty when constructed).
  const std::vector<double>& training_inertia() const { return training_inertia_; }

  // codes[i * M + m] = the nearest centroid of sub-vector m of row rows[i] of `matrix` (row
  // stride ld floats; rows == nullptr: rows 0 .. n-1). Multi-threaded over blocks of rows, each
  // row read once, in the order given: over ascending rows of a memory-mapped matrix it streams.
  void encode(const float* matrix, int64_t ld, const int32_t* rows, int64_t n, uint8_t* codes) const;
  // out[i * D ..] = the concatenated centroids of codes[i * M ..], i in [0, n): the reference
  // decode (the gather's fused decode is gnn/bifeat_decode.h). Codes must be < centroids().
  void decode(const uint8_t* codes, int64_t n, float* out) const;

 private:
  int64_t dim_ = 0, subvectors_ = 0, centroids_ = 0;
  std::vector<float> codebooks_;
  std::vector<CentroidSet> sets_;  // one per sub-space, for encoding
  std::vector<double> training_inertia_;
};

// PQ codebooks stored in 8 bits (a BiFeat file's pq_codebook_bits = 8): value = q * scale, q in
// [-127, 127], one f32 scale per column of each sub-space (the largest magnitude of that column
// over the K centroids, / 127). K * D bytes and D floats instead of K * D floats: 33 KiB instead
// of 128 KiB for D = 128, which at 64k nodes is the difference between 26x and 30x for M = 16.
struct Int8Codebooks {
  std::vector<int8_t> values;  // [M, K, D / M], laid out as ProductQuantizer::codebooks()
  std::vector<float> scales;   // [M, D / M]: column j of sub-space m at m * (D / M) + j
};
Int8Codebooks quantize_codebooks(const ProductQuantizer& pq);
// The quantizer whose centroids are the 8-bit codebooks' values, float(q) * scale (one rounding:
// what the gather's fused decode gives).
ProductQuantizer dequantize_codebooks(int64_t dim, int64_t subvectors, int64_t centroids, const Int8Codebooks& q);

}  // namespace gannet::gnn
