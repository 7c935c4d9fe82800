// W4A4: token-wise int4 activation rows (kernels/quantize_rows_int4.h) and the integer products
// on them (kernels/quant_matmul.h with 4-bit rows).
#include <cmath>
#include <cstring>

#include "gannet/compress/quantizer.h"
#include "gannet/core/error.h"
#include "gannet/core/rng.h"
#include "gannet/kernels/gemm.h"
#include "gannet/kernels/quant_matmul.h"
#include "gannet/kernels/quantize_rows_int4.h"
#include "kernel_test_util.h"
#include "random_quantized_matrix.h"

using namespace gannet;
using namespace gannet::testing;
namespace k = gannet::kernels;

namespace {
// int4 rows of X owning their storage; columns [K, Kp) are padding.
struct Int4Rows {
  std::vector<uint8_t> q, zero;
  std::vector<float> scale;
  k::QuantizedRows r;
  Int4Rows(const std::vector<float>& X, int64_t M, int64_t K, int64_t Kp, bool asym, float static_scale = 0.f)
      : q(M * Kp / 2 + 3), zero(M), scale(M) {
    k::quantize_rows_int4(X.data(), K, M, K, Kp, asym, static_scale, q.data(), Kp / 2, scale.data(),
                          asym ? zero.data() : nullptr);
    r = {reinterpret_cast<const int8_t*>(q.data()), Kp / 2, scale.data(), M, Kp, 4, asym ? zero.data() : nullptr};
  }
  int code(int64_t m, int64_t k) const {
    const uint8_t b = q[m * (r.ld) + k / 2];
    return k % 2 == 0 ? (b & 0x0F) : (b >> 4);
  }
  int value(int64_t m, int64_t k) const { return code(m, k) - (r.zero ? r.zero[m] : 8); }
};

// Rows with outliers and a row of zeros, so that every clamp and the zero-row rule are reached.
std::vector<float> activations(int64_t M, int64_t K, uint64_t seed) {
  auto X = random_vec(M * K, seed);
  for (int64_t i = 0; i < M * K; i += 13) X[i] *= 9.f;
  if (M > 2)
    for (int64_t k = 0; k < K; ++k) X[2 * K + k] = 0.f;
  if (M > 3)
    for (int64_t k = 0; k < K; ++k) X[3 * K + k] = std::fabs(X[3 * K + k]);  // all positive: z = 0 when asymmetric
  return X;
}
}  // namespace

// Each code against the documented formula, computed here in double.
TEST(W4A4, QuantizeRowsInt4FollowsTheFormula) {
  for (bool asym : {false, true})
    for (int64_t K : {1, 2, 15, 16, 33, 96, 770}) {
      const int64_t M = 6, Kp = (K + 63) / 64 * 64;
      const auto X = activations(M, K, 3 + K);
      const Int4Rows A(X, M, K, Kp, asym);
      for (int64_t m = 0; m < M; ++m) {
        double lo = 0, hi = 0;
        for (int64_t k = 0; k < K; ++k) {
          lo = std::min<double>(lo, X[m * K + k]);
          hi = std::max<double>(hi, X[m * K + k]);
        }
        const double range = asym ? hi - lo : 2 * std::max(-lo, hi);
        const double step = asym ? range / 15 : range / 14;
        ASSERT_NEAR(A.scale[m], step, 1e-6 * step) << "row " << m << " K " << K;
        const int z = asym ? A.zero[m] : 8;
        if (asym && range > 0) {
          ASSERT_EQ(z, (int)std::nearbyint(-lo / step)) << "row " << m;
        }
        for (int64_t k = 0; k < Kp; ++k) {
          const int c = A.code(m, k);
          ASSERT_GE(c, asym ? 0 : 1);
          ASSERT_LE(c, 15);
          if (k >= K) {
            ASSERT_EQ(c, z) << "padding column " << k;
            continue;
          }
          // Within half a step of x (the range holds every x: no clamping beyond rounding).
          const double err = std::fabs((double)A.scale[m] * (c - z) - X[m * K + k]);
          ASSERT_LE(err, 0.5 * step * (1 + 1e-5) + 1e-7) << "row " << m << " col " << k << " K " << K;
        }
      }
    }
}

TEST(W4A4, StaticScaleClampsToSevenSteps) {
  const int64_t M = 3, K = 64;
  const auto X = activations(M, K, 8);
  const Int4Rows A(X, M, K, K, false, 0.25f);
  for (int64_t m = 0; m < M; ++m) {
    ASSERT_EQ(A.scale[m], 0.25f);
    for (int64_t k = 0; k < K; ++k) {
      const double want = std::nearbyint(std::clamp(X[m * K + k] * 4.0, -7.0, 7.0));
      ASSERT_EQ(A.value(m, k), (int)want) << m << " " << k;
    }
  }
}

TEST(W4A4, VectorQuantizationMatchesTheScalarReference) {
  GANNET_SKIP_WITHOUT_VECTOR_ISA();
  for (bool asym : {false, true})
    for (float st : {0.f, 0.3f})
      for (int64_t K : awkward_sizes()) {
        if (asym && st > 0.f) continue;
        const int64_t M = 5, Kp = K + K % 2;
        const auto X = activations(M, K, 17 + K);
        std::vector<uint8_t> want(M * Kp / 2), wz(M);
        std::vector<float> ws(M);
        k::ref::quantize_rows_int4(X.data(), K, M, K, Kp, asym, st, want.data(), Kp / 2, ws.data(), wz.data());
        for (Isa isa : vector_isas()) {
          std::vector<uint8_t> got(M * Kp / 2), gz(M);
          std::vector<float> gs(M);
          auto fn = isa == Isa::avx512 ? k::avx512::quantize_rows_int4 : k::avx2::quantize_rows_int4;
          fn(X.data(), K, M, K, Kp, asym, st, got.data(), Kp / 2, gs.data(), gz.data());
          ASSERT_EQ(got, want) << isa_name(isa) << " K " << K << " asym " << asym;
          ASSERT_EQ(gs, ws) << isa_name(isa);
          ASSERT_EQ(gz, wz) << isa_name(isa);
        }
      }
}

// The W4A4 product is the product of the int8 rows c - z, bitwise, on every weight format, row
// count (one-row, few-row and tiled paths) and thread count.
TEST(W4A4, ProductEqualsTheProductOfTheWidenedRows) {
  const int saved = k::num_threads();
  for (int bits : {4, 8})
    for (bool wasym : {false, true})
      for (bool aasym : {false, true})
        for (int64_t M : {1, 3, 7, 32, 45})
          for (auto [K, group] : {std::pair<int64_t, int64_t>{192, 64}, {160, 32}, {96, 96}}) {
          const int64_t N = 70;
          QMatrix W(bits, N, K, group, wasym, 31 + M);
          const auto X = activations(M, K, 41 + M);
          const auto b = random_vec(N, 5);
          const Int4Rows A(X, M, K, K, aasym);
          std::vector<int8_t> wide(M * K);
          k::widen_int4_rows(A.r, 0, M, wide.data(), K);
          for (int64_t m = 0; m < M; ++m)
            for (int64_t c = 0; c < K; ++c) ASSERT_EQ(wide[m * K + c], A.value(m, c));
          const k::QuantizedRows A8{wide.data(), K, A.scale.data(), M, K};
          std::vector<float> want(M * N);
          k::quant_matmul(A8, W.p, b.data(), want.data(), N, k::Epilogue::store);
          for (int threads : {1, 2}) {
            k::set_num_threads(threads);
            std::vector<float> got(M * N);
            k::quant_matmul(A.r, W.p, b.data(), got.data(), N, k::Epilogue::store);
            ASSERT_EQ(got, want) << "W" << bits << (wasym ? " asym" : "") << " A4" << (aasym ? " asym" : "")
                                 << " M " << M << " K " << K << " threads " << threads;
          }
          }
  k::set_num_threads(saved);
}

// With unit scales the result is the integer sum_k (c - z_a) (q - z_w), computed here from the
// codes and the plain weights, independently of the kernels.
TEST(W4A4, IntegerPartIsExact) {
  const int64_t N = 33, M = 9, K = 128, group = 32;
  for (bool aasym : {false, true}) {
    QMatrix W(4, N, K, group, true, 12, 1.f);
    const auto X = activations(M, K, 77);
    Int4Rows A(X, M, K, K, aasym);
    std::fill(A.scale.begin(), A.scale.end(), 1.f);
    std::vector<float> Y(M * N);
    k::quant_matmul(A.r, W.p, nullptr, Y.data(), N, k::Epilogue::store);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        int64_t want = 0;
        for (int64_t c = 0; c < K; ++c)
          want += (int64_t)A.value(m, c) * (W.w.value(n, c) - W.zero[n * (K / group) + c / group]);
        ASSERT_EQ(Y[m * N + n], (float)want) << m << " " << n;
      }
  }
}

TEST(W4A4, BadInputsThrow) {
  std::vector<float> X(4 * 64, 1.f), s(4);
  std::vector<uint8_t> q(4 * 32), z(4);
  EXPECT_THROW(k::quantize_rows_int4(X.data(), 64, 4, 64, 63, false, 0.f, q.data(), 32, s.data(), nullptr), Error);
  EXPECT_THROW(k::quantize_rows_int4(X.data(), 64, 4, 64, 64, true, 0.5f, q.data(), 32, s.data(), z.data()), Error);
  EXPECT_THROW(k::quantize_rows_int4(X.data(), 64, 4, 64, 64, true, 0.f, q.data(), 32, s.data(), nullptr), Error);
  EXPECT_THROW(k::quantize_rows_int4(X.data(), 64, 4, 64, 64, false, 0.f, q.data(), 31, s.data(), nullptr), Error);
  QMatrix W(4, 16, 64, 32, false, 1);
  std::vector<float> Y(4 * 16);
  const k::QuantizedRows odd{reinterpret_cast<const int8_t*>(q.data()), 32, s.data(), 4, 63, 4, nullptr};
  EXPECT_THROW(k::quant_matmul(odd, W.p, nullptr, Y.data(), 16, k::Epilogue::store), Error);
  const k::QuantizedRows five{reinterpret_cast<const int8_t*>(q.data()), 32, s.data(), 4, 64, 5, nullptr};
  EXPECT_THROW(k::quant_matmul(five, W.p, nullptr, Y.data(), 16, k::Epilogue::store), Error);
  const k::QuantizedRows narrow{reinterpret_cast<const int8_t*>(q.data()), 31, s.data(), 4, 64, 4, nullptr};
  EXPECT_THROW(k::quant_matmul(narrow, W.p, nullptr, Y.data(), 16, k::Epilogue::store), Error);
}

// What a student trains on (compress::fake_quantize_activations) is the engine's int4 values.
TEST(W4A4, FakeQuantizedActivationsAreTheKernelsValues) {
  for (bool asym : {false, true}) {
    const int64_t M = 5, K = 37;
    const auto X = activations(M, K, 90);
    std::vector<float> fake(M * K);
    compress::fake_quantize_activations(X.data(), M, K, io::ActivationQuant{true, 0.f, 4, asym}, fake.data());
    const Int4Rows A(X, M, K, K + 1, asym);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t k = 0; k < K; ++k) ASSERT_EQ(fake[m * K + k], A.scale[m] * (float)A.value(m, k)) << m << " " << k;
  }
}
