// The int8 peer (oneDNN's matmul primitive, weights reordered once) computes the exact integer
// product: it is a bound and a peer, so a wrong product would make every figure held to it wrong.
#include "gannet/kernels/onednn_int8_gemm.h"

#include <vector>

#include "gannet/core/error.h"
#include "gannet/core/rng.h"
#include "kernel_test_util.h"

using namespace gannet;
namespace k = gannet::kernels;

namespace {
// C[m, n] = sum_k A[m, k] B[n, k] in int32, one product at a time.
std::vector<int32_t> reference(int64_t M, int64_t N, int64_t K, const std::vector<uint8_t>& A,
                               const std::vector<int8_t>& B) {
  std::vector<int32_t> C(M * N);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      int32_t s = 0;
      for (int64_t kk = 0; kk < K; ++kk) s += (int32_t)A[m * K + kk] * (int32_t)B[n * K + kk];
      C[m * N + n] = s;
    }
  return C;
}

void expect_exact(int64_t M, int64_t N, int64_t K, int a_max, int b_min, int b_max, uint64_t seed) {
  Rng rng(seed);
  std::vector<uint8_t> A(M * K);
  std::vector<int8_t> B(N * K);
  for (auto& a : A) a = (uint8_t)rng.below(a_max + 1);
  for (auto& b : B) b = (int8_t)(b_min + (int)rng.below(b_max - b_min + 1));
  const k::OnednnInt8Matmul product(M, N, K, B.data());
  B.assign(B.size(), 0);  // the weights were copied at construction
  std::vector<int32_t> C(M * N, -7);
  product.run(A.data(), C.data());
  Rng again(seed);
  for (auto& a : A) a = (uint8_t)again.below(a_max + 1);
  for (auto& b : B) b = (int8_t)(b_min + (int)again.below(b_max - b_min + 1));
  const std::vector<int32_t> want = reference(M, N, K, A, B);
  for (int64_t i = 0; i < M * N; ++i)
    ASSERT_EQ(C[i], want[i]) << "M " << M << " N " << N << " K " << K << " at row " << i / N << " col " << i % N
                             << " (" << product.implementation() << ")";
}

struct Shape {
  int64_t M, N, K;
};
const Shape kShapes[] = {{1, 1, 1}, {1, 33, 100}, {7, 17, 64}, {5, 50, 300}, {130, 96, 768}, {64, 3, 3072}};
}  // namespace

TEST(OnednnInt8Matmul, MatchesScalarReferenceWithSevenBitWeights) {
  // |weights| <= 64: exact with or without VNNI (no pair of products leaves int16).
  uint64_t seed = 1;
  for (const Shape& s : kShapes) expect_exact(s.M, s.N, s.K, 255, -64, 63, ++seed);
}

TEST(OnednnInt8Matmul, MatchesScalarReferenceAtTheFullRangesWhereItSaysSo) {
  // Where exact_at_full_range() says so, every product is exact over u8 x s8; where it does not
  // (no VNNI), a full-range product does differ from the reference, so the bench's note is true.
  uint64_t seed = 100;
  if (k::OnednnInt8Matmul::exact_at_full_range()) {
    for (const Shape& s : kShapes) expect_exact(s.M, s.N, s.K, 255, -128, 127, ++seed);
    return;
  }
  std::vector<uint8_t> A(4 * 256, 255);
  std::vector<int8_t> B(3 * 256, -128);
  std::vector<int32_t> C(4 * 3);
  k::OnednnInt8Matmul(4, 3, 256, B.data()).run(A.data(), C.data());
  EXPECT_NE(C[0], 255 * -128 * 256);
}

TEST(OnednnInt8Matmul, NamesItsImplementation) {
  std::vector<int8_t> B(16 * 32, 1);
  const k::OnednnInt8Matmul product(4, 16, 32, B.data());
  EXPECT_FALSE(product.implementation().empty());
}

TEST(OnednnInt8Matmul, RejectsAnEmptyShape) {
  std::vector<int8_t> B(4, 1);
  EXPECT_THROW(k::OnednnInt8Matmul(0, 2, 2, B.data()), Error);
  EXPECT_THROW(k::OnednnInt8Matmul(2, 2, -1, B.data()), Error);
}

TEST(OnednnInt8Matmul, MeasuresAPositiveRate) { EXPECT_GT(k::measure_onednn_int8_gops(64, 1), 0.0); }
