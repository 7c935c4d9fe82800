// Log scalar quantization: codes are sign and log level as the header lays them out, every value
// decodes within the stated bound, zeros and signs are exact, malformed codes are found.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "bifeat_test_data.h"
#include "gannet/gnn/log_scalar_quantizer.h"

namespace gannet::gnn {
namespace {

TEST(LogScalarQuantizerTest, CodesAreTheSignAndTheLogLevel) {
  // Column 0: lo = 0, step = 1 (level m covers [2^(m-1), 2^m), decodes to 2^(m - 1/2)).
  const LogScalarQuantizer q(8, {0.f, -3.f}, {1.f, 0.5f});
  const float x[2] = {-3.f, 0.2f};
  uint8_t c[2];
  q.encode_row(x, c);
  EXPECT_EQ(c[0], 0x80 | 2);  // log2 3 = 1.58: level 2, negative
  // log2 0.2 = -2.32 in column 1: (-2.32 + 3) / 0.5 = 1.36, level 2.
  EXPECT_EQ(c[1], 2);
  float y[2];
  q.decode_row(c, y);
  EXPECT_FLOAT_EQ(y[0], -std::exp2(1.5f));
  EXPECT_FLOAT_EQ(y[1], std::exp2(-3.f + 0.75f));
  // Below the floor 2^0 = 1: 0.3 is nearer 0 than 2^0.5, 0.8 nearer 2^0.5.
  const float below[2] = {0.3f, 0.f};
  q.encode_row(below, c);
  EXPECT_EQ(c[0], 0);
  const float near[2] = {-0.8f, 0.f};
  q.encode_row(near, c);
  EXPECT_EQ(c[0], 0x81);
}

TEST(LogScalarQuantizerTest, FourBitCodesPackTwoPerByteAndPadOddRows) {
  const LogScalarQuantizer q(4, {0.f, 0.f, 0.f}, {1.f, 1.f, 1.f});
  EXPECT_EQ(q.row_bytes(), 2);
  const float x[3] = {1.5f, -5.f, 100.f};  // levels 1, 3, and 100 clipped to the top level 7
  uint8_t c[2];
  q.encode_row(x, c);
  EXPECT_EQ(c[0], 1 | ((8 | 3) << 4));
  EXPECT_EQ(c[1], 7);  // the padding nibble is 0
  EXPECT_EQ(q.first_bad_code(c), -1);
  uint8_t padded[2] = {c[0], (uint8_t)(c[1] | 0x10)};
  EXPECT_EQ(q.first_bad_code(padded), 3);
  uint8_t negative_zero[2] = {(uint8_t)((c[0] & 0xf0) | 8), c[1]};
  EXPECT_EQ(q.first_bad_code(negative_zero), 0);
}

// max_energy_below: the share of the squared magnitudes below the floors allowed; the floors are
// chosen for the squared error, so the values they give up are small ones.
void expect_round_trip_within_bound(int bits, int64_t n, int64_t d, double max_energy_below) {
  const Tensor t = testing::heavy_tailed_features(n, d, 17 + bits);
  const float* x = t.f32();
  const LogScalarQuantizer q = LogScalarQuantizer::fit(x, d, d, nullptr, n, bits, 512);
  std::vector<uint8_t> codes(n * q.row_bytes());
  q.encode(x, d, nullptr, n, codes.data());
  std::vector<float> y(d);
  int64_t in_range = 0, nonzero = 0;
  double energy = 0, energy_below = 0;
  for (int64_t i = 0; i < n; ++i) {
    q.decode_row(&codes[i * q.row_bytes()], y.data());
    for (int64_t j = 0; j < d; ++j) {
      const float v = x[i * d + j];
      if (v == 0.f) {
        ASSERT_EQ(std::signbit(y[j]), false) << i << "," << j;
        ASSERT_EQ(y[j], 0.f) << i << "," << j;
        continue;
      }
      ++nonzero;
      const double a = std::fabs((double)v);
      energy += a * a;
      if (a >= q.floor_value(j)) {
        ++in_range;
        ASSERT_EQ(std::signbit(y[j]), std::signbit(v)) << i << "," << j;
        ASSERT_LE(std::fabs(y[j] - (double)v) / a, q.relative_error_bound(j) * (1 + 1e-5) + 1e-6)
            << "row " << i << " column " << j << ": " << v << " -> " << y[j];
      } else {
        energy_below += a * a;
        const double level1 = std::exp2((double)q.lo()[j] + 0.5 * q.step()[j]);
        ASSERT_LE(std::fabs(y[j] - (double)v), 0.5 * level1 * (1 + 1e-6)) << i << "," << j;
        ASSERT_TRUE(y[j] == 0.f || std::signbit(y[j]) == std::signbit(v)) << i << "," << j;
      }
    }
  }
  EXPECT_GT(in_range, nonzero / 4);  // the relative bound covers many values, not a vacuous few
  EXPECT_LT(energy_below / energy, max_energy_below);
  for (int64_t j = 0; j < d; ++j) EXPECT_GT(q.step()[j], 0.f);
}

TEST(LogScalarQuantizerTest, EightBitRoundTripIsWithinTheBound) { expect_round_trip_within_bound(8, 3000, 13, 1e-4); }
TEST(LogScalarQuantizerTest, FourBitRoundTripIsWithinTheBound) { expect_round_trip_within_bound(4, 3000, 13, 2e-2); }

TEST(LogScalarQuantizerTest, EightBitsAreFarCloserThanFour) {
  const int64_t n = 2000, d = 8;
  const Tensor t = testing::normal_features(n, d, 3);
  double err[2] = {0, 0}, norm = 0;
  for (int b = 0; b < 2; ++b) {
    const LogScalarQuantizer q = LogScalarQuantizer::fit(t.f32(), d, d, nullptr, n, b == 0 ? 8 : 4);
    std::vector<uint8_t> c(q.row_bytes());
    std::vector<float> y(d);
    for (int64_t i = 0; i < n; ++i) {
      q.encode_row(t.f32() + i * d, c.data());
      q.decode_row(c.data(), y.data());
      for (int64_t j = 0; j < d; ++j) {
        const double e = (double)y[j] - t.f32()[i * d + j];
        err[b] += e * e;
        if (b == 0) norm += (double)t.f32()[i * d + j] * t.f32()[i * d + j];
      }
    }
  }
  EXPECT_LT(err[0] / norm, 2e-3);
  EXPECT_LT(err[1] / norm, 0.1);
  EXPECT_LT(err[0] * 20, err[1]);
}

TEST(LogScalarQuantizerTest, ColumnOfZerosAndConstantColumnsAreExactOrBounded) {
  // Column 0 all zeros, column 1 constant magnitude with both signs.
  const int64_t n = 10;
  std::vector<float> x(n * 2);
  for (int64_t i = 0; i < n; ++i) x[2 * i] = 0.f, x[2 * i + 1] = i % 2 ? 0.75f : -0.75f;
  const LogScalarQuantizer q = LogScalarQuantizer::fit(x.data(), 2, 2, nullptr, n, 8);
  std::vector<uint8_t> c(2);
  float y[2];
  for (int64_t i = 0; i < n; ++i) {
    q.encode_row(&x[2 * i], c.data());
    q.decode_row(c.data(), y);
    EXPECT_EQ(y[0], 0.f);
    EXPECT_NEAR(y[1], x[2 * i + 1], 1e-6);
  }
}

TEST(LogScalarQuantizerTest, RejectsNonFiniteValuesAndBadRanges) {
  std::vector<float> x = {1.f, std::numeric_limits<float>::quiet_NaN()};
  EXPECT_THROW(LogScalarQuantizer::fit(x.data(), 2, 2, nullptr, 1, 8), Error);
  EXPECT_THROW(LogScalarQuantizer(6, {0.f}, {1.f}), Error);
  EXPECT_THROW(LogScalarQuantizer(8, {0.f}, {-1.f}), Error);
  EXPECT_THROW(LogScalarQuantizer(8, {100.f}, {1.f}), Error);  // 2^(100 + 126.5) overflows
  EXPECT_THROW(LogScalarQuantizer(8, {0.f, 1.f}, {1.f}), Error);
}

}  // namespace
}  // namespace gannet::gnn
