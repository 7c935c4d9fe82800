// XTC's low-bit fake quantization: the forward bitwise equal to the packed quantizer's
// dequantized weights (random shapes, per-row and group scales, binary and ternary, all-zero rows,
// values exactly at the ternary threshold), hand-computed values, the identity straight-through
// gradient, and the packed quantizer's errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "gannet/autograd/distill_ops.h"
#include "gannet/autograd/tape.h"
#include "gannet/compress/low_bit_fake_quant.h"
#include "gannet/core/error.h"
#include "kernel_test_util.h"

using namespace gannet;
using autograd::Var;
using compress::LowBitSpec;

namespace {
std::vector<float> fake_quantized(const std::vector<float>& w, int64_t N, int64_t K, const LowBitSpec& spec) {
  autograd::NoGrad ng;
  Var out = compress::fake_quantize_low_bit(Var(Tensor::from_vector(w, {N, K})), spec);
  return std::vector<float>(out.value().f32(), out.value().f32() + N * K);
}

void expect_bitwise_packed(const std::vector<float>& w, int64_t N, int64_t K, const LowBitSpec& spec) {
  const Tensor packed = compress::quantize_low_bit(w.data(), N, K, spec).dequantize();
  const std::vector<float> fake = fake_quantized(w, N, K, spec);
  ASSERT_EQ(std::memcmp(fake.data(), packed.f32(), N * K * sizeof(float)), 0)
      << spec.describe() << " [" << N << ", " << K << "]";
}

// A ternary row of n >= 4 columns whose mean |w| is exactly 1 in float, so delta = 0.7f: entries
// at +-delta (dropped), just above it (kept), and ones.
std::vector<float> threshold_row(int64_t n) {
  std::vector<float> r(n, 1.f);
  const float delta = compress::kTernaryThreshold, above = std::nextafter(delta, 1.f);
  r[0] = delta;
  r[1] = -delta;
  r[2] = -above;
  r[3] = 1.f + (1.f - delta) * 2 + (1.f - above);  // restores the sum to n
  return r;
}
}  // namespace

TEST(LowBitFakeQuant, HandComputedValues) {
  const std::vector<float> w = {1, -3, 0, 2};
  // Binary: alpha = mean |w| = 1.5, sign(0) = +1.
  EXPECT_EQ(fake_quantized(w, 1, 4, {1, 0}), (std::vector<float>{1.5f, -1.5f, 1.5f, 1.5f}));
  // Ternary: delta = 0.7 * 1.5 = 1.05 keeps -3 and 2; alpha = 2.5.
  EXPECT_EQ(fake_quantized(w, 1, 4, {2, 0}), (std::vector<float>{0.f, -2.5f, 0.f, 2.5f}));
}

TEST(LowBitFakeQuant, ThresholdValuesAreDroppedExactly) {
  const std::vector<float> r = threshold_row(40);
  ASSERT_EQ(compress::low_bit_mean_abs(r.data(), 40), 1.f);  // the row tests what it says
  const std::vector<float> q = fake_quantized(r, 1, 40, {2, 0});
  EXPECT_EQ(q[0], 0.f);
  EXPECT_EQ(q[1], 0.f);
  EXPECT_LT(q[2], 0.f);
  expect_bitwise_packed(r, 1, 40, {2, 0});
}

TEST(LowBitFakeQuant, BitwiseEqualToPackedDequantized) {
  Rng rng(11);
  for (int trial = 0; trial < 40; ++trial) {
    const int64_t N = 1 + (int64_t)rng.below(6), K = 1 + (int64_t)rng.below(300);
    std::vector<float> w = gannet::testing::random_vec(N * K, 100 + trial, 0.05f);
    if (N > 1) std::fill(w.begin() + K, w.begin() + 2 * K, 0.f);  // a row of zeros
    if (K >= 4 && N > 2) {
      const std::vector<float> t = threshold_row(K);
      std::copy(t.begin(), t.end(), w.begin() + 2 * K);
    }
    for (int bits : {1, 2})
      for (int64_t group : {0, 32, 64, 128, 4096}) expect_bitwise_packed(w, N, K, {bits, group});
  }
}

TEST(LowBitFakeQuant, GradientPassesStraightThrough) {
  const std::vector<float> w = gannet::testing::random_vec(3 * 40, 12);
  Var x(Tensor::from_vector(w, {3, 40}), true);
  const Tensor target = Tensor::zeros({3, 40});
  Var q = compress::fake_quantize_low_bit(x, {2, 32});
  autograd::tape().backward(autograd::mse(q, target));  // d/dq = 2 q / n
  for (int64_t i = 0; i < 120; ++i) EXPECT_EQ(x.grad().f32()[i], 2.f / 120.f * q.value().f32()[i]) << i;
  // A second pass adds to the gradient.
  const std::vector<float> first(x.grad().f32(), x.grad().f32() + 120);
  autograd::tape().backward(autograd::mse(compress::fake_quantize_low_bit(x, {2, 32}), target));
  for (int64_t i = 0; i < 120; ++i) EXPECT_EQ(x.grad().f32()[i], 2.f * first[i]) << i;
}

TEST(LowBitFakeQuant, RejectsWhatThePackedQuantizerRejects) {
  Var w(Tensor::full({2, 64}, 0.5f), true);
  EXPECT_THROW(compress::fake_quantize_low_bit(w, {3, 0}), Error);   // bits
  EXPECT_THROW(compress::fake_quantize_low_bit(w, {1, 48}), Error);  // group
  EXPECT_THROW(compress::fake_quantize_low_bit(Var(Tensor::full({64}, 0.5f)), {1, 0}), Error);
  EXPECT_THROW(compress::fake_quantize_low_bit(Var(Tensor::empty({0, 64})), {1, 0}), Error);
  w.value().f32()[70] = NAN;
  EXPECT_THROW(compress::fake_quantize_low_bit(w, {1, 32}), Error);
  try {
    compress::fake_quantize_low_bit(w, {1, 32});
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("weight [1, 6]"), std::string::npos) << e.what();
  }
}
