// k-means against direct computations: the GEMM assignment is the brute-force nearest centroid,
// Lloyd's inertia never rises, planted clusters are found, and threads change nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "gannet/core/error.h"
#include "gannet/core/rng.h"
#include "gannet/gnn/kmeans.h"
#include "gannet/kernels/gemm.h"
#include "kernel_test_util.h"

namespace gannet::gnn {
namespace {

double distance2(const float* a, const float* b, int64_t d) {
  double s = 0;
  for (int64_t j = 0; j < d; ++j) s += ((double)a[j] - b[j]) * ((double)a[j] - b[j]);
  return s;
}

// Brute force in double: the index of the nearest centroid, its distance, and the runner-up's.
struct Nearest {
  int64_t index = -1;
  double best = std::numeric_limits<double>::infinity(), second = std::numeric_limits<double>::infinity();
};
Nearest brute_force(const float* x, const std::vector<float>& c, int64_t k, int64_t d) {
  Nearest n;
  for (int64_t j = 0; j < k; ++j) {
    const double v = distance2(x, &c[j * d], d);
    if (v < n.best) n.second = n.best, n.best = v, n.index = j;
    else if (v < n.second) n.second = v;
  }
  return n;
}

TEST(KMeansTest, AssignmentIsTheBruteForceNearestCentroid) {
  const int64_t n = 1500, d = 7, k = 37, ld = 9;  // ld > d: a strided sub-matrix, as PQ's sub-spaces are
  const std::vector<float> x = testing::random_vec(n * ld, 1), c = testing::random_vec(k * d, 2);
  std::vector<int32_t> index(n);
  std::vector<float> dist2(n);
  CentroidSet(c.data(), k, d).assign_parallel(x.data(), n, ld, index.data(), dist2.data());
  int64_t exact = 0;
  for (int64_t i = 0; i < n; ++i) {
    const Nearest want = brute_force(&x[i * ld], c, k, d);
    // A different pick is allowed only between centroids equally near up to float rounding.
    const double picked = distance2(&x[i * ld], &c[index[i] * d], d);
    EXPECT_LE(picked - want.best, 1e-5 * (1 + want.best)) << "row " << i;
    exact += index[i] == want.index;
    EXPECT_NEAR(dist2[i], want.best, 1e-4 * (1 + want.best)) << "row " << i;
  }
  EXPECT_GE(exact, n - 2);  // near-ties are rare in random data
}

TEST(KMeansTest, InertiaNeverIncreasesOverLloydIterations) {
  const int64_t n = 3000, d = 4;
  const std::vector<float> x = testing::random_vec(n * d, 3);
  const KMeansResult r = kmeans(x.data(), n, d, d, {32, 30, 7});
  ASSERT_GE(r.inertia.size(), 5u);
  for (size_t i = 1; i < r.inertia.size(); ++i) EXPECT_LE(r.inertia[i], r.inertia[i - 1] * (1 + 1e-6)) << "step " << i;
  EXPECT_LT(r.inertia.back(), 0.9 * r.inertia.front());
  // The reported inertia is that of the assignment: recompute the last one directly.
  std::vector<float> before = r.centroids;  // the final means are at least as good as the last assignment
  double direct = 0;
  for (int64_t i = 0; i < n; ++i) direct += brute_force(&x[i * d], before, 32, d).best;
  EXPECT_LE(direct, r.inertia.back() * (1 + 1e-6));
}

TEST(KMeansTest, RecoversPlantedClusters) {
  const int64_t k = 8, d = 6, per = 150, n = k * per;
  Rng rng(11);
  std::vector<float> centres(k * d), x(n * d);
  for (auto& v : centres) v = 20.f * rng.normal();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) x[i * d + j] = centres[(i % k) * d + j] + 0.05f * rng.normal();
  const KMeansResult r = kmeans(x.data(), n, d, d, {k, 20, 5});
  std::vector<int> matched(k, 0);
  for (int64_t c = 0; c < k; ++c) {
    const Nearest near = brute_force(&r.centroids[c * d], centres, k, d);
    EXPECT_LT(std::sqrt(near.best), 0.05) << "centroid " << c;
    ++matched[near.index];
  }
  for (int64_t c = 0; c < k; ++c) EXPECT_EQ(matched[c], 1) << "planted centre " << c;
}

TEST(KMeansTest, FewerRowsThanCentroidsGivesTheRowsExactly) {
  const std::vector<float> x = testing::random_vec(5 * 3, 4);
  const KMeansResult r = kmeans(x.data(), 5, 3, 3, {8, 10, 0});
  ASSERT_EQ(r.centroids.size(), 24u);
  for (int64_t i = 0; i < 5; ++i) EXPECT_EQ(brute_force(&x[i * 3], r.centroids, 8, 3).best, 0.0);
}

TEST(KMeansTest, EmptyClustersAreReseeded) {
  // Three distinct points, many copies, five centroids: k-means++ covers the three, the other two
  // duplicate them, lose every tie and are reseeded.
  std::vector<float> x;
  for (int i = 0; i < 60; ++i) x.push_back((float)(i % 3) * 10.f);
  const KMeansResult r = kmeans(x.data(), 60, 1, 1, {5, 5, 3});
  EXPECT_GE(r.reseeded, 2);
  EXPECT_EQ(r.inertia.back(), 0.0);
}

TEST(KMeansTest, ResultDoesNotDependOnTheThreadCount) {
  const int64_t n = 5000, d = 8;
  const std::vector<float> x = testing::random_vec(n * d, 9);
  const int saved = kernels::num_threads();
  kernels::set_num_threads(1);
  const KMeansResult one = kmeans(x.data(), n, d, d, {64, 6, 1});
  kernels::set_num_threads(2);
  const KMeansResult two = kmeans(x.data(), n, d, d, {64, 6, 1});
  kernels::set_num_threads(saved);
  EXPECT_EQ(one.centroids, two.centroids);
  EXPECT_EQ(one.inertia, two.inertia);
}

TEST(KMeansTest, RejectsBadArguments) {
  const std::vector<float> x(10, 1.f);
  EXPECT_THROW(kmeans(x.data(), 0, 2, 2, {}), Error);
  EXPECT_THROW(kmeans(x.data(), 5, 2, 1, {}), Error);  // ld < d
  EXPECT_THROW(CentroidSet(x.data(), 0, 2), Error);
}

}  // namespace
}  // namespace gannet::gnn
