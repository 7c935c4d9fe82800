// Product quantization: codes are the brute-force nearest centroid of each sub-vector, decoding
// is the centroids exactly, and bad shapes are refused.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

#include "gannet/core/error.h"
#include "gannet/core/rng.h"
#include "gannet/gnn/product_quantizer.h"
#include "gannet/kernels/gemm.h"
#include "kernel_test_util.h"

namespace gannet::gnn {
namespace {

double distance2(const float* a, const float* b, int64_t d) {
  double s = 0;
  for (int64_t j = 0; j < d; ++j) s += ((double)a[j] - b[j]) * ((double)a[j] - b[j]);
  return s;
}

TEST(ProductQuantizerTest, EncodeIsTheBruteForceNearestCentroidPerSubspace) {
  const int64_t n = 900, D = 24, M = 4, ds = D / M, K = 64;
  const std::vector<float> x = testing::random_vec(n * D, 21);
  const ProductQuantizer pq = ProductQuantizer::train(x.data(), 500, D, {M, K, 5, 3, {}});
  std::vector<int32_t> rows(n);  // every row, in a shuffled order
  std::iota(rows.begin(), rows.end(), 0);
  Rng rng(4);
  for (int64_t i = n - 1; i > 0; --i) std::swap(rows[i], rows[rng.below(i + 1)]);
  std::vector<uint8_t> codes(n * M);
  pq.encode(x.data(), D, rows.data(), n, codes.data());
  int64_t exact = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t m = 0; m < M; ++m) {
      const float* sub = &x[rows[i] * D + m * ds];
      double best = std::numeric_limits<double>::infinity();
      int64_t best_c = -1;
      for (int64_t c = 0; c < K; ++c) {
        const double v = distance2(sub, pq.centroid(m, c), ds);
        if (v < best) best = v, best_c = c;
      }
      const double got = distance2(sub, pq.centroid(m, codes[i * M + m]), ds);
      EXPECT_LE(got - best, 1e-5 * (1 + best)) << "row " << rows[i] << " sub-space " << m;
      exact += codes[i * M + m] == best_c;
    }
  }
  EXPECT_GE(exact, n * M - 3);
}

TEST(ProductQuantizerTest, DecodeIsTheCentroidsExactly) {
  const int64_t D = 12, M = 3, K = 5, n = 40;
  const std::vector<float> cb = testing::random_vec(M * K * (D / M), 8);
  const ProductQuantizer pq(D, M, K, cb);
  Rng rng(2);
  std::vector<uint8_t> codes(n * M);
  for (auto& c : codes) c = (uint8_t)rng.below(K);
  std::vector<float> out(n * D);
  pq.decode(codes.data(), n, out.data());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t j = 0; j < D / M; ++j)
        ASSERT_EQ(out[i * D + m * 4 + j], cb[(m * K + codes[i * M + m]) * 4 + j]) << i << " " << m << " " << j;
  codes[7] = K;  // out of range
  EXPECT_THROW(pq.decode(codes.data(), n, out.data()), Error);
}

TEST(ProductQuantizerTest, EncodeDoesNotDependOnTheThreadCount) {
  const int64_t n = 5000, D = 16, M = 2;
  const std::vector<float> x = testing::random_vec(n * D, 5);
  const ProductQuantizer pq = ProductQuantizer::train(x.data(), 1000, D, {M, 256, 3, 0, {}});
  std::vector<uint8_t> one(n * M), two(n * M);
  const int saved = kernels::num_threads();
  kernels::set_num_threads(1);
  pq.encode(x.data(), D, nullptr, n, one.data());
  kernels::set_num_threads(2);
  pq.encode(x.data(), D, nullptr, n, two.data());
  kernels::set_num_threads(saved);
  EXPECT_EQ(one, two);
}

TEST(ProductQuantizerTest, TrainingReducesTheErrorBelowTheVariance) {
  // 16 centroids per 2-d sub-space quantize a standard normal with MSE about 0.12 per dimension.
  const int64_t n = 4000, D = 8, M = 4;
  const std::vector<float> x = testing::random_vec(n * D, 6);
  const ProductQuantizer pq = ProductQuantizer::train(x.data(), n, D, {M, 16, 20, 0, {}});
  std::vector<uint8_t> codes(n * M);
  pq.encode(x.data(), D, nullptr, n, codes.data());
  std::vector<float> y(n * D);
  pq.decode(codes.data(), n, y.data());
  double err = 0, norm = 0;
  for (int64_t i = 0; i < n * D; ++i) err += ((double)x[i] - y[i]) * ((double)x[i] - y[i]), norm += (double)x[i] * x[i];
  EXPECT_LT(err / norm, 0.2);
}

TEST(ProductQuantizerTest, RejectsBadShapes) {
  EXPECT_THROW(ProductQuantizer(10, 3, 4, std::vector<float>(40)), Error);   // 10 % 3 != 0
  EXPECT_THROW(ProductQuantizer(8, 2, 257, std::vector<float>(8 * 257)), Error);
  EXPECT_THROW(ProductQuantizer(8, 2, 4, std::vector<float>(31)), Error);
  const std::vector<float> x(80, 1.f);
  EXPECT_THROW(ProductQuantizer::train(x.data(), 10, 8, {3, 4, 1, 0, {}}), Error);
}

}  // namespace
}  // namespace gannet::gnn
