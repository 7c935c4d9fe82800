#include "gannet/compress/quantizer.h"

#include <cmath>

#include "gannet/core/error.h"
#include "kernel_test_util.h"

using namespace gannet;
using namespace gannet::testing;
namespace c = gannet::compress;

namespace {

c::WeightQuantSpec spec(int bits, int64_t group, bool symmetric) {
  c::WeightQuantSpec s;
  s.bits = bits;
  s.group = group;
  s.symmetric = symmetric;
  return s;
}

// The group's [lo, hi] over the unpadded columns, computed directly.
std::pair<float, float> range_of(const std::vector<float>& W, int64_t K, int64_t n, int64_t k0, int64_t G) {
  float lo = 0.f, hi = 0.f, amax = 0.f;
  for (int64_t k = k0; k < std::min(K, k0 + G); ++k) {
    lo = std::min(lo, W[n * K + k]);
    hi = std::max(hi, W[n * K + k]);
    amax = std::max(amax, std::fabs(W[n * K + k]));
  }
  return {lo, hi};
}

}  // namespace

TEST(Quantizer, RoundTripErrorIsAtMostHalfAStep) {
  const int64_t N = 13, K = 200;
  const auto W = random_vec(N * K, 3);
  for (int bits : {8, 4})
    for (int64_t group : {0, 32, 64, 128})
      for (bool sym : {true, false}) {
        const c::WeightQuantSpec s = spec(bits, group, sym);
        const io::QuantizedTensor t = c::quantize_weights(W.data(), N, K, s);
        t.validate("test");
        const int64_t G = t.group;
        ASSERT_EQ(t.padded_in % G, 0);
        ASSERT_GE(t.padded_in, K);
        const Tensor D = t.dequantize();
        const int qmax = (1 << (bits - 1)) - 1;
        for (int64_t n = 0; n < N; ++n)
          for (int64_t k = 0; k < K; ++k) {
            auto [lo, hi] = range_of(W, K, n, k / G * G, G);
            const float step = sym ? std::max(-lo, hi) / qmax : (hi - lo) / (2 * qmax + 1);
            ASSERT_NEAR(D.f32()[n * K + k], W[n * K + k], 0.5f * step * 1.0001f + 1e-7f)
                << s.describe() << " at " << n << "," << k;
          }
      }
}

TEST(Quantizer, RepresentableValuesAreExact) {
  // Rows whose values are multiples of a step, with the extremes present, come back exactly.
  const int64_t N = 4, K = 64;
  std::vector<float> W(N * K);
  Rng rng(5);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) W[n * K + k] = 0.25f * (float)((int)rng.below(15) - 7);
  for (int64_t n = 0; n < N; ++n) W[n * K] = 0.25f * 7, W[n * K + 1] = -0.25f * 7;
  const io::QuantizedTensor t = c::quantize_weights(W.data(), N, K, spec(4, 32, true));
  const Tensor D = t.dequantize();
  for (int64_t i = 0; i < N * K; ++i) ASSERT_EQ(D.f32()[i], W[i]) << i;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) ASSERT_EQ(t.view().value(n, k), (int)std::lround(W[n * K + k] / 0.25f));
}

TEST(Quantizer, FourBitNibblesAreTwosComplementLowFirst) {
  const int64_t N = 2, K = 32;
  std::vector<float> W(N * K, 0.f);
  W[0] = -7.f;  // scale 1: q = -7 at column 0 (low nibble of byte 0)
  W[1] = 3.f;   // column 1: high nibble of byte 0
  W[K + 5] = 7.f;
  const io::QuantizedTensor t = c::quantize_weights(W.data(), N, K, spec(4, 32, true));
  const uint8_t* q = static_cast<const uint8_t*>(t.q.raw());
  EXPECT_EQ(q[0], (uint8_t)((3 << 4) | 0x9));  // -7 = 0b1001
  EXPECT_EQ(q[K / 2 + 2], (uint8_t)(7 << 4));   // column 5 of row 1: high nibble of its byte 2
  EXPECT_FLOAT_EQ(t.scale.f32()[0], 1.f);
}

TEST(Quantizer, AsymmetricUsesTheWholeRange) {
  // Values in [0, 15]: asymmetric 4-bit represents them exactly, symmetric does not.
  const int64_t N = 1, K = 32;
  std::vector<float> W(K);
  for (int64_t k = 0; k < K; ++k) W[k] = (float)(k % 16);
  const Tensor A = c::quantize_weights(W.data(), N, K, spec(4, 32, false)).dequantize();
  for (int64_t k = 0; k < K; ++k) ASSERT_NEAR(A.f32()[k], W[k], 1e-5f);
  const Tensor S = c::quantize_weights(W.data(), N, K, spec(4, 32, true)).dequantize();
  float worst = 0.f;
  for (int64_t k = 0; k < K; ++k) worst = std::max(worst, std::fabs(S.f32()[k] - W[k]));
  EXPECT_GT(worst, 0.5f);
}

TEST(Quantizer, PaddingQuantizesToZeroAndKeepsTheLogicalWidth) {
  const int64_t N = 3, K = 100;
  const auto W = random_vec(N * K, 9);
  const io::QuantizedTensor t = c::quantize_weights(W.data(), N, K, spec(8, 64, false));
  EXPECT_EQ(t.padded_in, 128);
  EXPECT_EQ(t.in, 100);
  EXPECT_EQ(t.dequantize().shape(), (Shape{N, K}));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = K; k < t.padded_in; ++k) ASSERT_EQ(t.view().dequantized(n, k), 0.f);
  const io::QuantizedTensor r = c::quantize_weights(W.data(), N, K, spec(8, 0, true));
  EXPECT_EQ(r.padded_in, 128);  // per row: padded to the kernels' 32 columns
  EXPECT_EQ(r.group, 128);
}

TEST(Quantizer, FakeQuantizeEqualsDequantizedQuantize) {
  const int64_t N = 5, K = 96;
  const auto W = random_vec(N * K, 11);
  for (int bits : {8, 4})
    for (bool sym : {true, false}) {
      const c::WeightQuantSpec s = spec(bits, 32, sym);
      std::vector<float> fq(N * K);
      c::fake_quantize_weights(W.data(), N, K, s, fq.data());
      const Tensor D = c::quantize_weights(W.data(), N, K, s).dequantize();
      for (int64_t i = 0; i < N * K; ++i) ASSERT_EQ(fq[i], D.f32()[i]) << s.describe();
    }
}

TEST(Quantizer, StochasticRoundingIsUnbiasedAndSeeded) {
  // One group of values at a fixed fraction of a step: nearest rounding always goes down,
  // stochastic rounding goes up about 30% of the time.
  const int64_t N = 1, K = 64;
  std::vector<float> W(K, 0.3f);
  W[0] = 127.f;  // symmetric int8: scale 1
  c::WeightQuantSpec s = spec(8, 64, true);
  s.stochastic = true;
  double mean = 0;
  int trials = 200;
  for (int seed = 0; seed < trials; ++seed) {
    s.seed = (uint64_t)seed;
    const io::QuantizedTensor t = c::quantize_weights(W.data(), N, K, s);
    for (int64_t k = 1; k < K; ++k) {
      const int v = t.view().value(0, k);
      ASSERT_TRUE(v == 0 || v == 1);
      mean += v;
    }
  }
  mean /= trials * (K - 1);
  EXPECT_NEAR(mean, 0.3, 0.02);
  s.seed = 42;
  const io::QuantizedTensor a = c::quantize_weights(W.data(), N, K, s), b = c::quantize_weights(W.data(), N, K, s);
  for (int64_t k = 0; k < K; ++k) ASSERT_EQ(a.view().value(0, k), b.view().value(0, k));
}

TEST(Quantizer, RejectsUnsupportedSpecs) {
  const std::vector<float> W(64, 1.f);
  EXPECT_THROW(c::quantize_weights(W.data(), 1, 64, spec(3, 32, true)), Error);
  EXPECT_THROW(c::quantize_weights(W.data(), 1, 64, spec(8, 48, true)), Error);
  EXPECT_THROW(c::quantize_weights(W.data(), 1, 64, spec(8, -32, true)), Error);
}

TEST(Quantizer, ValidateCatchesInconsistentTensors) {
  const auto W = random_vec(4 * 64, 2);
  io::QuantizedTensor t = c::quantize_weights(W.data(), 4, 64, spec(4, 32, false));
  t.validate("ok");
  io::QuantizedTensor bad = t;
  bad.scale = Tensor::zeros({4, 3});
  EXPECT_THROW(bad.validate("bad"), Error);
  bad = t;
  bad.bits = 8;  // 4-bit integers read as 8-bit
  EXPECT_THROW(bad.validate("bad"), Error);
  bad = t;
  bad.zero = Tensor::full({4, 2}, 0.f);  // f32 zero points
  EXPECT_THROW(bad.validate("bad"), Error);
}

TEST(Quantizer, ActivationsTokenWiseAndStatic) {
  const int64_t M = 3, K = 50;
  auto X = random_vec(M * K, 4);
  X[K + 7] = 10.f;  // row 1 has a large value
  std::vector<int8_t> q(M * K);
  std::vector<float> scales(M);
  c::quantize_activations(X.data(), M, K, 0.f, q.data(), scales.data());
  for (int64_t m = 0; m < M; ++m) {
    float amax = 0.f;
    for (int64_t k = 0; k < K; ++k) amax = std::max(amax, std::fabs(X[m * K + k]));
    EXPECT_FLOAT_EQ(scales[m], amax / 127.f);
    for (int64_t k = 0; k < K; ++k) ASSERT_NEAR(scales[m] * q[m * K + k], X[m * K + k], 0.5f * scales[m] * 1.0001f);
  }
  EXPECT_EQ(q[K + 7], 127);
  // Static: one scale; values beyond 127 steps clip.
  c::quantize_activations(X.data(), M, K, 0.05f, q.data(), scales.data());
  for (int64_t m = 0; m < M; ++m) EXPECT_EQ(scales[m], 0.05f);
  EXPECT_EQ(q[K + 7], 127);
  std::vector<float> fq(M * K);
  c::fake_quantize_activations(X.data(), M, K, 0.05f, fq.data());
  EXPECT_FLOAT_EQ(fq[K + 7], 0.05f * 127);
  EXPECT_FLOAT_EQ(c::static_scale_from_max_abs(12.7f), 0.1f);
  EXPECT_THROW(c::quantize_activations(X.data(), M, K, -1.f, q.data(), scales.data()), Error);
}
