// The GELU -> int4 fusion of W4A4's MLP (kernels::quant_matmul_gelu_int4) and the two halves of
// int4 row quantization it is built from (rows_min_max, quantize_rows_int4_with).
#include <algorithm>

#include "gannet/core/error.h"
#include "gannet/kernels/gemm.h"
#include "gannet/kernels/quant_matmul.h"
#include "gannet/kernels/quantize_rows.h"
#include "gannet/kernels/quantize_rows_int4.h"
#include "kernel_test_util.h"
#include "random_quantized_matrix.h"

using namespace gannet;
using namespace gannet::testing;
namespace k = gannet::kernels;

namespace {
using MinMax = void (*)(const float*, int64_t, int64_t, int64_t, float*, float*);
using CodesWith = void (*)(const float*, int64_t, int64_t, int64_t, int64_t, bool, const float*, const uint8_t*,
                           uint8_t*, int64_t);
struct Path {
  const char* name;
  MinMax min_max;
  CodesWith codes;
};
std::vector<Path> paths() {
  std::vector<Path> p{{"ref", k::ref::rows_min_max, k::ref::quantize_rows_int4_with}};
  for (Isa isa : vector_isas())
    p.push_back(isa == Isa::avx512 ? Path{"avx512", k::avx512::rows_min_max, k::avx512::quantize_rows_int4_with}
                                   : Path{"avx2", k::avx2::rows_min_max, k::avx2::quantize_rows_int4_with});
  return p;
}

// Rows with an outlier every 11 values, a row of zeros and an all-positive row.
std::vector<float> rows(int64_t M, int64_t ld, uint64_t seed) {
  auto X = random_vec(M * ld, seed);
  for (int64_t i = 0; i < M * ld; i += 11) X[i] *= 7.f;
  if (M > 1) std::fill(X.begin() + ld, X.begin() + 2 * ld, 0.f);
  if (M > 2)
    for (int64_t c = 0; c < ld; ++c) X[2 * ld + c] = std::fabs(X[2 * ld + c]);
  return X;
}
}  // namespace

// A row cut at an even column into two ranges, each range's extremes merged and its codes written
// with the whole row's scale: the codes, scales and zero points of quantize_rows_int4, on every path.
TEST(GeluInt4, RangesGiveTheWholeRowsCodes) {
  for (bool asym : {false, true})
    for (float st : {0.f, 0.25f})
      for (int64_t K : {2, 17, 64, 97, 770}) {
        if (asym && st > 0.f) continue;
        const int64_t M = 5, Kp = (K + 63) / 64 * 64, ldq = Kp / 2, cut = (K / 3) & ~int64_t(1);
        const auto X = rows(M, K, 3 + K);
        std::vector<uint8_t> want(M * ldq), wz(M);
        std::vector<float> ws(M);
        k::quantize_rows_int4(X.data(), K, M, K, Kp, asym, st, want.data(), ldq, ws.data(), wz.data());
        for (const Path& p : paths()) {
          std::vector<float> lo0(M), hi0(M), lo1(M), hi1(M), inv(M), scale(M);
          std::vector<uint8_t> zero(M), got(M * ldq, 0xAA);
          p.min_max(X.data(), K, M, cut, lo0.data(), hi0.data());
          p.min_max(X.data() + cut, K, M, K - cut, lo1.data(), hi1.data());
          for (int64_t m = 0; m < M; ++m) {
            const k::Int4RowScale r = k::int4_row_scale(std::min(lo0[m], lo1[m]), std::max(hi0[m], hi1[m]), asym, st);
            inv[m] = r.inv;
            zero[m] = (uint8_t)r.zero;
            scale[m] = r.scale;
          }
          const uint8_t* z = asym ? zero.data() : nullptr;
          p.codes(X.data(), K, M, cut, cut, asym, inv.data(), z, got.data(), ldq);
          p.codes(X.data() + cut, K, M, K - cut, Kp - cut, asym, inv.data(), z, got.data() + cut / 2, ldq);
          const std::string what = str(p.name, " K ", K, " asym ", asym, " static ", st);
          ASSERT_EQ(got, want) << what;
          ASSERT_EQ(scale, ws) << what;
          if (asym) {
            ASSERT_EQ(zero, wz) << what;
          }
        }
      }
}

// The fused kernel: H, the int4 codes (padding included), scales and zero points bitwise those of
// quant_matmul with the GELU epilogue followed by quantize_rows_int4, for one and two threads, int8
// and int4 input rows, every weight format.
TEST(GeluInt4, EqualsProductThenQuantizeRowsInt4) {
  const int before = k::num_threads();
  for (int wbits : {4, 8})
    for (int64_t N : {6, 77, 400}) {
      const int64_t K = 128, group = 64;
      QMatrix W(wbits, N, K, group, wbits == 4, 600 + N + wbits);
      const auto b = random_vec(N, 8);
      for (int64_t M : {1, 3, 8, 129}) {
        const auto X = rows(M, K, 9 + M);
        std::vector<int8_t> xq(M * K);
        std::vector<float> xs(M);
        k::quantize_rows(X.data(), K, M, K, 0.f, xq.data(), K, xs.data());
        const k::QuantizedRows A{xq.data(), K, xs.data(), M, K};
        for (bool asym : {false, true})
          for (float st : {0.f, 0.01f}) {
            if (asym && st > 0.f) continue;
            for (int threads : {1, 2}) {
              k::set_num_threads(threads);
              const int64_t ldh = N + 2, Kp = (N + 63) / 64 * 64, ldq = Kp / 2 + 3;
              std::vector<float> want_h(M * ldh, 1.f), got_h(M * ldh, 1.f), want_s(M), got_s(M);
              std::vector<uint8_t> want_q(M * ldq, 3), got_q(M * ldq, 3), want_z(M), got_z(M);
              k::quant_matmul(A, W.p, b.data(), want_h.data(), ldh, k::Epilogue::gelu);
              k::quantize_rows_int4(want_h.data(), ldh, M, N, Kp, asym, st, want_q.data(), ldq, want_s.data(),
                                    asym ? want_z.data() : nullptr);
              k::quant_matmul_gelu_int4(A, W.p, b.data(), got_h.data(), ldh, Kp, asym, st, got_q.data(), ldq,
                                        got_s.data(), asym ? got_z.data() : nullptr);
              const std::string what = str("W", wbits, " M ", M, " N ", N, " asym ", asym, " static ", st,
                                           " threads ", threads);
              ASSERT_EQ(got_h, want_h) << what;
              ASSERT_EQ(got_q, want_q) << what;  // bytes beyond Kp / 2 untouched in both
              ASSERT_EQ(got_s, want_s) << what;
              ASSERT_EQ(got_z, want_z) << what;
            }
          }
      }
    }
  k::set_num_threads(before);
}

TEST(GeluInt4, BadArgumentsThrow) {
  QMatrix W(8, 32, 64, 64, false, 1);
  std::vector<int8_t> a(2 * 64);
  std::vector<uint8_t> q(2 * 32), z(2);
  std::vector<float> sa(2, 1.f), h(2 * 32), s(2);
  const k::QuantizedRows A{a.data(), 64, sa.data(), 2, 64};
  auto run = [&](int64_t Kp, bool asym, float st, int64_t ldq, uint8_t* zeros) {
    k::quant_matmul_gelu_int4(A, W.p, nullptr, h.data(), 32, Kp, asym, st, q.data(), ldq, s.data(), zeros);
  };
  EXPECT_NO_THROW(run(32, true, 0.f, 16, z.data()));
  EXPECT_THROW(run(30, false, 0.f, 16, nullptr), Error);     // Kp < N
  EXPECT_THROW(run(33, false, 0.f, 17, nullptr), Error);     // Kp odd
  EXPECT_THROW(run(32, false, 0.f, 15, nullptr), Error);     // ldq too small
  EXPECT_THROW(run(32, true, 0.f, 16, nullptr), Error);      // asymmetric without zero points
  EXPECT_THROW(run(32, true, 0.5f, 16, z.data()), Error);    // static asymmetric
  EXPECT_THROW(run(32, false, -1.f, 16, nullptr), Error);    // negative static scale
}
