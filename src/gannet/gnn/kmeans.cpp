#include "gannet/gnn/kmeans.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "gannet/core/error.h"
#include "gannet/core/parallel_errors.h"
#include "gannet/core/rng.h"
#include "gannet/kernels/gemm.h"

namespace gannet::gnn {

namespace {

float squared_norm(const float* x, int64_t d) {
  float s = 0.f;
  for (int64_t j = 0; j < d; ++j) s += x[j] * x[j];
  return s;
}

float squared_distance(const float* a, const float* b, int64_t d) {
  float s = 0.f;
  for (int64_t j = 0; j < d; ++j) s += (a[j] - b[j]) * (a[j] - b[j]);
  return s;
}

void check_rows(const char* what, const float* x, int64_t n, int64_t d, int64_t ld) {
  GANNET_CHECK(n >= 0 && d >= 1 && ld >= d, what, ": bad shape n=", n, " d=", d, " ld=", ld);
  GANNET_CHECK(n == 0 || x != nullptr, what, ": rows are null");
}

// Index of the row drawn with probability weight[i] / sum(weight); uniform when all are 0.
int64_t draw_weighted(const std::vector<float>& weight, Rng& rng) {
  double total = 0;
  for (float w : weight) total += w;
  const int64_t n = (int64_t)weight.size();
  if (!(total > 0)) return (int64_t)rng.below((uint64_t)n);
  const double u = rng.uniform_double() * total;
  double acc = 0;
  int64_t last_positive = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (weight[i] <= 0) continue;
    acc += weight[i];
    last_positive = i;
    if (acc > u) return i;
  }
  return last_positive;  // u landed on the rounding slack of the sum
}

// Centroids = the means of their rows (sums in double); clusters left empty move onto the rows
// farthest from their centroids (one row each). Returns how many were empty.
int64_t update_centroids(const float* x, int64_t n, int64_t d, int64_t ld, int64_t k, const std::vector<int32_t>& index,
                         const std::vector<float>& dist2, std::vector<float>& centroids) {
  std::vector<double> sums((size_t)(k * d), 0.0);
  std::vector<int64_t> counts((size_t)k, 0);
  for (int64_t i = 0; i < n; ++i) {
    const float* r = x + i * ld;
    double* s = sums.data() + (int64_t)index[i] * d;
    for (int64_t j = 0; j < d; ++j) s[j] += r[j];
    ++counts[index[i]];
  }
  std::vector<int64_t> empty;
  for (int64_t c = 0; c < k; ++c) {
    if (counts[c] == 0) {
      empty.push_back(c);
      continue;
    }
    for (int64_t j = 0; j < d; ++j) centroids[c * d + j] = (float)(sums[c * d + j] / (double)counts[c]);
  }
  if (empty.empty()) return 0;
  const int64_t take = std::min<int64_t>((int64_t)empty.size(), n);
  std::vector<int64_t> order((size_t)n);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + take, order.end(), [&](int64_t a, int64_t b) {
    return dist2[a] != dist2[b] ? dist2[a] > dist2[b] : a < b;
  });
  for (int64_t e = 0; e < take; ++e) std::memcpy(&centroids[empty[e] * d], x + order[e] * ld, (size_t)d * sizeof(float));
  return (int64_t)empty.size();
}

}  // namespace

CentroidSet::CentroidSet(const float* centroids, int64_t k, int64_t d) : k_(k), d_(d) {
  GANNET_CHECK(k >= 1 && d >= 1 && centroids != nullptr, "centroids: bad shape k=", k, " d=", d);
  centroids_.assign(centroids, centroids + k * d);
  norms_.resize((size_t)k);
  for (int64_t c = 0; c < k; ++c) norms_[c] = squared_norm(centroids + c * d, d);
}

// argmin_c ||x - c||^2 = argmin_c (||c||^2 - 2 x.c): the GEMM gives -2 x.c for a block of rows.
void CentroidSet::assign(const float* x, int64_t n, int64_t ld, int32_t* index, float* dist2) const {
  check_rows("nearest centroids", x, n, d_, ld);
  thread_local std::vector<float> dots;  // [kBlockRows, k]: reused, the hot loop allocates nothing
  dots.resize((size_t)(std::min(n, kBlockRows) * k_));
  for (int64_t r0 = 0; r0 < n; r0 += kBlockRows) {
    const int64_t rows = std::min(kBlockRows, n - r0);
    kernels::gemm(false, true, rows, k_, d_, -2.f, x + r0 * ld, ld, centroids_.data(), d_, 0.f, dots.data(), k_);
    for (int64_t i = 0; i < rows; ++i) {
      const float* s = dots.data() + i * k_;
      int32_t best = 0;
      float best_v = s[0] + norms_[0];
      for (int64_t c = 1; c < k_; ++c) {
        const float v = s[c] + norms_[c];
        if (v < best_v) best_v = v, best = (int32_t)c;
      }
      index[r0 + i] = best;
      if (dist2) dist2[r0 + i] = std::max(0.f, squared_norm(x + (r0 + i) * ld, d_) + best_v);
    }
  }
}

void CentroidSet::assign_parallel(const float* x, int64_t n, int64_t ld, int32_t* index, float* dist2) const {
  check_rows("nearest centroids", x, n, d_, ld);
  const int64_t blocks = (n + kBlockRows - 1) / kBlockRows;
  ParallelErrors errors;
#pragma omp parallel for schedule(dynamic, 4) if (blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    errors.run([&] {
      const int64_t r0 = b * kBlockRows, rows = std::min(kBlockRows, n - r0);
      assign(x + r0 * ld, rows, ld, index + r0, dist2 ? dist2 + r0 : nullptr);
    });
  }
  errors.rethrow();
}

// One thread: each of the k draws depends on the one before, and a parallel region per draw costs
// more than the draw's O(n d) work on a busy machine.
std::vector<float> kmeans_plus_plus(const float* x, int64_t n, int64_t d, int64_t ld, int64_t k, uint64_t seed) {
  check_rows("k-means++", x, n, d, ld);
  GANNET_CHECK(n >= 1 && k >= 1, "k-means++: needs at least one row and one centroid (n=", n, ", k=", k, ")");
  Rng rng(seed);
  std::vector<float> centroids((size_t)(k * d));
  std::vector<float> nearest((size_t)n);  // squared distance to the nearest centroid so far
  int64_t pick = (int64_t)rng.below((uint64_t)n);
  for (int64_t c = 0; c < k; ++c) {
    if (c > 0) pick = draw_weighted(nearest, rng);
    float* cent = centroids.data() + c * d;
    std::memcpy(cent, x + pick * ld, (size_t)d * sizeof(float));
    for (int64_t i = 0; i < n; ++i) {
      const float dist = squared_distance(x + i * ld, cent, d);
      if (c == 0 || dist < nearest[i]) nearest[i] = dist;
    }
  }
  return centroids;
}

KMeansResult kmeans(const float* x, int64_t n, int64_t d, int64_t ld, const KMeansOptions& opt) {
  check_rows("k-means", x, n, d, ld);
  GANNET_CHECK(opt.k >= 1 && opt.iterations >= 0, "k-means: k=", opt.k, " must be >= 1 and iterations=",
               opt.iterations, " >= 0");
  GANNET_CHECK(n >= 1, "k-means: no rows to cluster");
  KMeansResult result;
  const int64_t k = opt.k;
  if (n <= k) {  // every row is a centroid: exact
    result.centroids.resize((size_t)(k * d));
    for (int64_t c = 0; c < k; ++c) std::memcpy(&result.centroids[c * d], x + (c % n) * ld, (size_t)d * sizeof(float));
    result.inertia.push_back(0.0);
    return result;
  }
  std::vector<float> packed;  // a strided sub-matrix (a PQ sub-space) is read k + iterations times: pack it
  if (ld != d) {
    packed.resize((size_t)(n * d));
    for (int64_t i = 0; i < n; ++i) std::memcpy(&packed[i * d], x + i * ld, (size_t)d * sizeof(float));
    x = packed.data(), ld = d;
  }
  result.centroids = kmeans_plus_plus(x, n, d, ld, k, opt.seed);
  std::vector<int32_t> index((size_t)n), previous((size_t)n, -1);
  std::vector<float> dist2((size_t)n);
  for (int it = 0; it < opt.iterations; ++it) {
    CentroidSet(result.centroids.data(), k, d).assign_parallel(x, n, ld, index.data(), dist2.data());
    double inertia = 0;
    for (float v : dist2) inertia += v;
    result.inertia.push_back(inertia);
    if (index == previous) break;  // converged: the centroids are already these clusters' means
    result.reseeded += update_centroids(x, n, d, ld, k, index, dist2, result.centroids);
    previous.swap(index);
  }
  return result;
}

}  // namespace gannet::gnn
