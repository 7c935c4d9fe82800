// XTC's vector products on the packed planes (kernels::low_bit_matmul and the per-ISA ranges): bitwise
// the scalar reference's results, whatever M, N, K, the group, the path and the thread count.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gannet/compress/low_bit_quantizer.h"
#include "gannet/core/cpu.h"
#include "gannet/kernels/low_bit_matmul.h"
#include "gannet/kernels/quantize_rows.h"
#include "test_files.h"

using namespace gannet;
using namespace gannet::testing;
using compress::LowBitSpec;
using io::LowBitTensor;

namespace {

struct Activations {
  std::vector<int8_t> q;
  std::vector<float> scale;
  int64_t M, K, ld;
  kernels::QuantizedRows rows() const { return {q.data(), ld, scale.data(), M, K}; }
  kernels::QuantizedRows row(int64_t m) const { return {q.data() + m * ld, ld, scale.data() + m, 1, K}; }
};

// Random rows quantized token-wise; columns [K, ld) hold garbage the products must not read. Row 2
// (when there is one) is all +-127, the extreme sums.
Activations random_activations(int64_t M, int64_t K, int64_t ld, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> x(M * K);
  for (float& v : x) v = normal(rng);
  if (M > 2)
    for (int64_t k = 0; k < K; ++k) x[2 * K + k] = (k % 5 == 0) ? -3.f : 3.f;
  Activations a{std::vector<int8_t>(M * ld, int8_t(101)), std::vector<float>(M), M, K, ld};
  kernels::quantize_rows(x.data(), K, M, K, 0.f, a.q.data(), ld, a.scale.data());
  return a;
}

// Random weights; row 1 all positive (binary: every sign bit set, the largest sums with row 2 of
// the activations), ternary row 3 all zero.
LowBitTensor random_weights(int64_t N, int64_t K, const LowBitSpec& spec, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 0.05f);
  std::vector<float> w(N * K);
  for (float& x : w) x = normal(rng);
  if (N > 1)
    for (int64_t k = 0; k < K; ++k) w[K + k] = 0.5f;
  if (N > 3)
    for (int64_t k = 0; k < K; ++k) w[3 * K + k] = 0.f;
  return compress::quantize_low_bit(w.data(), N, K, spec);
}

using Product = void (*)(const kernels::QuantizedRows&, const kernels::LowBitWeights&, float*, int64_t);

void avx2_product(const kernels::QuantizedRows& A, const kernels::LowBitWeights& W, float* Y, int64_t ldy) {
  kernels::avx2::low_bit_matmul_range(A, W, Y, ldy, 0, W.N);
}
void avx512_product(const kernels::QuantizedRows& A, const kernels::LowBitWeights& W, float* Y, int64_t ldy) {
  kernels::avx512::low_bit_matmul_range(A, W, Y, ldy, 0, W.N);
}

// The paths this CPU runs, by name.
std::vector<std::pair<std::string, Product>> paths() {
  std::vector<std::pair<std::string, Product>> p = {{"dispatch", kernels::low_bit_matmul}};
  if (cpu_has(Isa::avx2)) p.emplace_back("avx2", avx2_product);
  if (cpu_has_avx512_vnni() && cpu_has_avx512_vbmi_gfni()) p.emplace_back("avx512", avx512_product);
  return p;
}

// Y as `product` writes it into an [M, N + 3] buffer, checking that columns past N stay untouched.
std::vector<float> run(Product product, const Activations& a, const LowBitTensor& t) {
  const int64_t N = t.rows, ldy = N + 3;
  std::vector<float> y(a.M * ldy, -7.f);
  product(a.rows(), t.view(), y.data(), ldy);
  for (int64_t m = 0; m < a.M; ++m)
    for (int64_t n = N; n < ldy; ++n) EXPECT_EQ(y[m * ldy + n], -7.f) << "column past N written";
  return y;
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

class ThreadCount {
 public:
  explicit ThreadCount(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~ThreadCount() { omp_set_num_threads(saved_); }

 private:
  int saved_;
};

TEST(LowBitMatmulSimd, MatchesTheReferenceBitwise) {
  ASSERT_TRUE(cpu_has(Isa::avx2)) << "these tests need an AVX2 CPU";
  const std::vector<LowBitSpec> specs = {{1, 0}, {1, 32}, {1, 64}, {1, 96}, {1, 128}, {2, 0}, {2, 32}, {2, 64}, {2, 96}, {2, 128}};
  for (const LowBitSpec& spec : specs)
    for (const auto& [N, K] : std::vector<std::pair<int64_t, int64_t>>{{13, 100}, {21, 257}, {8, 64}, {3, 33}}) {
      const LowBitTensor t = random_weights(N, K, spec, (uint32_t)(N * 1000 + K));
      for (int64_t M : {1, 2, 3, 4, 5, 7, 8, 16, 33, 128}) {
        const Activations a = random_activations(M, K, K + 7, (uint32_t)(M + K));
        const std::vector<float> expected = run(kernels::ref::low_bit_matmul, a, t);
        for (const auto& [name, product] : paths())
          for (int threads : {1, 2}) {
            ThreadCount tc(threads);
            EXPECT_TRUE(bitwise_equal(run(product, a, t), expected))
                << name << " " << spec.describe() << " M " << M << " N " << N << " K " << K << " threads "
                << threads;
          }
      }
    }
}

// Wide rows: several int16 chunks per per-row group, extreme sums (the full int8 range), a padded
// last group.
TEST(LowBitMatmulSimd, WideRowsAreExact) {
  for (const LowBitSpec& spec : {LowBitSpec{1, 0}, LowBitSpec{2, 0}, LowBitSpec{1, 4096}, LowBitSpec{2, 8192}}) {
    const int64_t N = 11, K = 9000, M = 5;  // 282 words: int16 sums would overflow unchunked
    const LowBitTensor t = random_weights(N, K, spec, 21);
    Activations a = random_activations(M, K, K, 22);  // ld == K: nothing past the last row
    // Row 0 all -128 (the int8 extreme quantize_rows never writes): with weight row 1 (all +1), the
    // ternary int16 sums reach -32768 over a chunk.
    for (int64_t k = 0; k < K; ++k) a.q[k] = -128;
    const std::vector<float> expected = run(kernels::ref::low_bit_matmul, a, t);
    for (const auto& [name, product] : paths())
      EXPECT_TRUE(bitwise_equal(run(product, a, t), expected)) << name << " " << spec.describe();
  }
}

// Row m of an M-row product is the one-row product of row m (the batch-invariance contract).
TEST(LowBitMatmulSimd, RowsDoNotDependOnM) {
  for (const LowBitSpec& spec : {LowBitSpec{1, 64}, LowBitSpec{2, 0}}) {
    const int64_t N = 37, K = 300, M = 41;
    const LowBitTensor t = random_weights(N, K, spec, 31);
    const Activations a = random_activations(M, K, K + 1, 32);
    for (const auto& [name, product] : paths()) {
      const std::vector<float> all = run(product, a, t);
      for (int64_t m = 0; m < M; ++m) {
        std::vector<float> one(N);
        product(a.row(m), t.view(), one.data(), N);
        EXPECT_EQ(std::memcmp(one.data(), all.data() + m * (N + 3), N * sizeof(float)), 0)
            << name << " " << spec.describe() << " row " << m;
      }
    }
  }
}

TEST(LowBitMatmulSimd, LargeProductsSplitAcrossThreadsMatchTheReference) {
  const LowBitTensor t = random_weights(2304, 768, LowBitSpec{2, 64}, 41);
  for (int64_t M : {1, 130}) {
    const Activations a = random_activations(M, 768, 768, 42);
    const std::vector<float> expected = run(kernels::ref::low_bit_matmul, a, t);
    for (int threads : {1, 2}) {
      ThreadCount tc(threads);
      EXPECT_TRUE(bitwise_equal(run(kernels::low_bit_matmul, a, t), expected)) << "M " << M << " threads " << threads;
    }
  }
}

// Each path on a thread of its own, whose scratch buffers are sized for this product alone, so that
// the sanitized build sees any read past them (reused buffers hid a 32-byte overread of the last
// half chunk where padded_K is a multiple of 64 and a group an odd number of 32-column words).
TEST(LowBitMatmulSimd, FreshScratchBuffersAreNotReadPast) {
  for (const LowBitSpec& spec : {LowBitSpec{1, 32}, LowBitSpec{2, 96}, LowBitSpec{1, 0}, LowBitSpec{2, 32}})
    for (int64_t K : {64, 192, 288}) {
      const LowBitTensor t = random_weights(17, K, spec, 61);
      for (int64_t M : {1, 2, 7}) {
        const Activations a = random_activations(M, K, K, 62);  // ld == K: nothing past the last row
        const std::vector<float> expected = run(kernels::ref::low_bit_matmul, a, t);
        for (const auto& [name, product] : paths()) {
          std::vector<float> got;
          std::thread([&, p = product] { got = run(p, a, t); }).join();
          EXPECT_TRUE(bitwise_equal(got, expected)) << name << " " << spec.describe() << " K " << K << " M " << M;
        }
      }
    }
}

TEST(LowBitMatmulSimd, BadShapesAreRejected) {
  const LowBitTensor t = random_weights(3, 64, LowBitSpec{1, 0}, 51);
  const Activations a = random_activations(2, 63, 63, 52);
  std::vector<float> y(6);
  EXPECT_TRUE(has(message_of([&] { kernels::low_bit_matmul(a.rows(), t.view(), y.data(), 3); }),
                  "activations have 63 columns, the weights 64"));
  const Activations b = random_activations(2, 64, 64, 53);
  EXPECT_TRUE(has(message_of([&] { kernels::low_bit_matmul(b.rows(), t.view(), y.data(), 2); }), "output stride 2"));
  kernels::LowBitWeights v = t.view();
  v.bits = 2;
  EXPECT_TRUE(has(message_of([&] { kernels::low_bit_matmul(b.rows(), v, y.data(), 3); }), "planes or scales missing"));
  // More scales than the vector paths' int32 gather indices reach (checked before anything is read).
  v = t.view();
  v.N = int64_t(1) << 27;
  v.K = v.padded_K = 1024;
  v.group = 32;
  const Activations none = random_activations(0, 1024, 1024, 54);
  std::vector<float> wide_y(1);
  EXPECT_TRUE(has(message_of([&] { kernels::low_bit_matmul(none.rows(), v, wide_y.data(), v.N); }),
                  "more than the vector paths index"));
}

}  // namespace
