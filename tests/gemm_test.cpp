#include "gannet/kernels/gemm.h"

#include <cmath>
#include <limits>

#include "gannet/core/error.h"
#include "kernel_test_util.h"

using namespace gannet;
using namespace gannet::testing;
namespace k = gannet::kernels;

namespace {
// A stored as op(A) = M x K: rows x cols as stored, with a row stride larger than the width.
struct Mat {
  int64_t rows, cols, ld;
  std::vector<float> v;
};
Mat make(int64_t rows, int64_t cols, int64_t pad, uint64_t seed) {
  Mat m{rows, cols, cols + pad, {}};
  m.v = random_vec(std::max<int64_t>(rows, 1) * m.ld, seed);
  return m;
}
}  // namespace

TEST(Gemm, MatchesReferenceAllTransposesAwkwardSizes) {
  const int64_t sizes[] = {1, 7, 17, 64, 129};
  uint64_t seed = 1;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (int64_t M : sizes)
        for (int64_t N : sizes)
          for (int64_t K : sizes) {
            // Skip a few of the biggest combinations to keep the test quick.
            if (M * N * K > 129 * 129 * 64) continue;
            Mat A = ta ? make(K, M, 3, ++seed) : make(M, K, 3, ++seed);
            Mat B = tb ? make(N, K, 5, ++seed) : make(K, N, 5, ++seed);
            Mat C0 = make(M, N, 2, ++seed);
            for (float beta : {0.f, 0.5f}) {
              const float alpha = 1.25f;
              auto got = C0.v, want = C0.v;
              k::gemm(ta, tb, M, N, K, alpha, A.v.data(), A.ld, B.v.data(), B.ld, beta, got.data(), C0.ld);
              k::ref::gemm(ta, tb, M, N, K, alpha, A.v.data(), A.ld, B.v.data(), B.ld, beta, want.data(), C0.ld);
              SCOPED_TRACE(::testing::Message() << "ta=" << ta << " tb=" << tb << " M=" << M << " N=" << N
                                                << " K=" << K << " beta=" << beta);
              // Padding columns of C must be left alone (compared exactly through expect_close).
              expect_close(got, want, 1e-5f, 2e-5f * std::sqrt((float)K), "gemm");
            }
          }
}

TEST(Gemm, BetaZeroOverwritesNaN) {
  auto A = random_vec(6, 1), B = random_vec(6, 2);
  std::vector<float> C(4, std::numeric_limits<float>::quiet_NaN()), want(4, 0.f);
  k::gemm(false, false, 2, 2, 3, 1.f, A.data(), 3, B.data(), 2, 0.f, C.data(), 2);
  k::ref::gemm(false, false, 2, 2, 3, 1.f, A.data(), 3, B.data(), 2, 0.f, want.data(), 2);
  for (float c : C) ASSERT_FALSE(std::isnan(c));
  expect_close(C, want, 1e-6f, 1e-6f, "beta0");
}

TEST(Gemm, ZeroKScalesC) {
  std::vector<float> C = {1.f, 2.f, 3.f, 4.f};
  k::gemm(false, false, 2, 2, 0, 1.f, nullptr, 1, nullptr, 2, 0.5f, C.data(), 2);
  expect_close(C, {0.5f, 1.f, 1.5f, 2.f}, 0.f, 0.f, "K=0");
}

TEST(Gemm, RejectsBadLeadingDimension) {
  std::vector<float> A(64), B(64), C(64);
  EXPECT_THROW(k::gemm(false, false, 4, 4, 4, 1.f, A.data(), 3, B.data(), 4, 0.f, C.data(), 4), Error);
  EXPECT_THROW(k::gemm(false, true, 4, 4, 4, 1.f, A.data(), 4, B.data(), 4, 0.f, C.data(), 3), Error);
  EXPECT_THROW(k::gemm(false, false, -1, 4, 4, 1.f, A.data(), 4, B.data(), 4, 0.f, C.data(), 4), Error);
}

TEST(Gemm, BatchedMatchesReference) {
  // Small products (parallel over the batch) and big ones (threaded sgemm per product).
  struct Case { int64_t batch, M, N, K; bool ta, tb; };
  const Case cases[] = {{1, 7, 17, 5, false, false}, {33, 17, 7, 64, false, true},
                        {5, 129, 64, 17, true, false}, {3, 200, 190, 180, true, true},
                        {16, 1, 1, 1, false, false}};
  uint64_t seed = 100;
  for (const auto& c : cases) {
    const int64_t lda = (c.ta ? c.M : c.K) + 1, ldb = (c.tb ? c.K : c.N) + 2, ldc = c.N + 3;
    const int64_t sa = (c.ta ? c.K : c.M) * lda + 5, sb = (c.tb ? c.N : c.K) * ldb + 1, sc = c.M * ldc + 7;
    auto A = random_vec(c.batch * sa, ++seed), B = random_vec(c.batch * sb, ++seed);
    auto got = random_vec(c.batch * sc, ++seed), want = got;
    k::gemm_batched(c.ta, c.tb, c.M, c.N, c.K, 0.75f, A.data(), lda, B.data(), ldb, 1.f, got.data(), ldc,
                    c.batch, sa, sb, sc);
    k::ref::gemm_batched(c.ta, c.tb, c.M, c.N, c.K, 0.75f, A.data(), lda, B.data(), ldb, 1.f, want.data(),
                         ldc, c.batch, sa, sb, sc);
    SCOPED_TRACE(::testing::Message() << "batch=" << c.batch << " M=" << c.M << " N=" << c.N << " K=" << c.K);
    expect_close(got, want, 1e-5f, 3e-4f, "gemm_batched");
  }
}

TEST(Gemm, RefIsCorrectOnAKnownProduct) {
  // [[1,2],[3,4]] * [[5,6],[7,8]] = [[19,22],[43,50]]; with trans_a: A^T = [[1,3],[2,4]] -> [[26,30],[38,44]].
  std::vector<float> A = {1, 2, 3, 4}, B = {5, 6, 7, 8}, C(4);
  k::ref::gemm(false, false, 2, 2, 2, 1.f, A.data(), 2, B.data(), 2, 0.f, C.data(), 2);
  expect_close(C, {19, 22, 43, 50}, 0.f, 0.f, "ref nn");
  k::gemm(true, false, 2, 2, 2, 1.f, A.data(), 2, B.data(), 2, 0.f, C.data(), 2);
  expect_close(C, {26, 30, 38, 44}, 0.f, 1e-5f, "tn");
}

TEST(Gemm, SetNumThreads) {
  const int before = k::num_threads();
  k::set_num_threads(1);
  EXPECT_EQ(k::num_threads(), 1);
  k::set_num_threads(before);
  EXPECT_EQ(k::num_threads(), before);
  EXPECT_THROW(k::set_num_threads(0), Error);
}
