#include "gannet/kernels/quant_matmul.h"

#include <cmath>
#include <cstring>
#include <memory>

#include "gannet/core/error.h"
#include "gannet/core/rng.h"
#include "gannet/kernels/gelu.h"
#include "gannet/kernels/gemm.h"
#include "gannet/kernels/quantize_rows.h"
#include "kernel_test_util.h"
#include "random_quantized_matrix.h"

using namespace gannet;
using namespace gannet::testing;
namespace k = gannet::kernels;

namespace {
constexpr k::Epilogue kEpilogues[] = {k::Epilogue::store, k::Epilogue::gelu, k::Epilogue::accumulate};

// Quantized activation rows owning their storage.
struct QRows {
  std::vector<int8_t> q;
  std::vector<float> scale;
  k::QuantizedRows r;
  QRows(const std::vector<float>& X, int64_t M, int64_t K, int64_t ld) : q(M * ld), scale(M) {
    k::quantize_rows(X.data(), K, M, K, 0.f, q.data(), ld, scale.data());
    r = {q.data(), ld, scale.data(), M, K};
  }
};

struct Shape {
  int bits;
  bool asym;
  int64_t group, K;
};

// Every weight format and group size, with K a few groups long (per-row: group == K).
std::vector<Shape> shapes() {
  std::vector<Shape> out;
  for (int bits : {8, 4})
    for (bool asym : {false, true}) {
      for (int64_t g : {32, 64, 128}) out.push_back({bits, asym, g, 3 * g});
      out.push_back({bits, asym, 160, 160});
    }
  return out;
}

std::string name(const Shape& s, int64_t M, k::Epilogue e) {
  return str("int", s.bits, s.asym ? " asym" : " sym", " group ", s.group, " K ", s.K, " M ", M, " epilogue ", (int)e);
}

// Compares a vector path with the reference: bitwise, except GELU (vector vs scalar tanh).
void expect_same(const std::vector<float>& got, const std::vector<float>& want, k::Epilogue e,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (e == k::Epilogue::gelu)
      ASSERT_NEAR(got[i], want[i], 1e-5f + 1e-5f * std::fabs(want[i])) << what << " at " << i;
    else
      ASSERT_EQ(got[i], want[i]) << what << " at " << i;
  }
}

using A8Fn = void (*)(const k::QuantizedRows&, const int32_t*, const k::QPackedMatrix&, const float*, float*, int64_t,
                      k::Epilogue, int64_t, int64_t);
using A16Fn = void (*)(const float*, int64_t, int64_t, const float*, const k::QPackedMatrix&, const float*, float*,
                       int64_t, k::Epilogue, int64_t, int64_t);

std::vector<std::pair<Isa, std::pair<A8Fn, A16Fn>>> vector_paths() {
  std::vector<std::pair<Isa, std::pair<A8Fn, A16Fn>>> out;
  for (Isa isa : vector_isas()) {
    if (isa == Isa::avx2) out.push_back({isa, {k::avx2::quant_matmul_range, k::avx2::quant_matmul_f32_range}});
    if (isa == Isa::avx512 && cpu_has_avx512_vnni())
      out.push_back({isa, {k::avx512::quant_matmul_range, k::avx512::quant_matmul_f32_range}});
  }
  return out;
}
}  // namespace

TEST(QuantMatmul, PackedRowsDequantizeLikeTheWeights) {
  for (const Shape& s : shapes()) {
    const int64_t N = 37;
    QMatrix W(s.bits, N, s.K, s.group, s.asym, 11);
    std::vector<float> rows(5 * s.K);
    k::unpack_quantized_rows(W.p, 30, 5, rows.data());
    for (int64_t i = 0; i < 5; ++i)
      for (int64_t c = 0; c < s.K; ++c) ASSERT_EQ(rows[i * s.K + c], W.w.dequantized(30 + i, c)) << name(s, 0, {});
    EXPECT_THROW(k::unpack_quantized_rows(W.p, 33, 5, rows.data()), Error);
  }
}

TEST(QuantMatmul, VectorPathsMatchTheScalarReference) {
  GANNET_SKIP_WITHOUT_VECTOR_ISA();
  const int64_t N = 77;  // four full blocks and a partial one (tiles of 1 and 3 blocks)
  for (const Shape& s : shapes()) {
    QMatrix W(s.bits, N, s.K, s.group, s.asym, 100 + s.K + s.bits);
    auto b = random_vec(N, 3);
    for (int64_t M : {1, 3, 8, 32, 129}) {
      const int64_t ldx = s.K + 5, ldy = N + 3;
      auto X = random_vec(M * ldx, 1 + M);
      QRows A(X, M, s.K, s.K + 4);
      std::vector<int32_t> asum(M * (s.K / s.group));
      std::vector<float> xsum(M * (s.K / s.group));
      k::activation_group_sums(A.r, s.group, asum.data());
      k::activation_group_sums_f32(X.data(), ldx, M, s.K, s.group, xsum.data());
      for (k::Epilogue e : kEpilogues) {
        auto Y0 = random_vec(M * ldy, 4);
        std::vector<float> want8 = Y0, want16 = Y0;
        k::ref::quant_matmul_range(A.r, asum.data(), W.p, b.data(), want8.data(), ldy, e, 0, N);
        k::ref::quant_matmul_f32_range(X.data(), ldx, M, xsum.data(), W.p, b.data(), want16.data(), ldy, e, 0, N);
        for (auto& [isa, fns] : vector_paths()) {
          std::vector<float> got8 = Y0, got16 = Y0;
          fns.first(A.r, asum.data(), W.p, b.data(), got8.data(), ldy, e, 0, N);
          fns.second(X.data(), ldx, M, xsum.data(), W.p, b.data(), got16.data(), ldy, e, 0, N);
          expect_same(got8, want8, e, str(isa_name(isa), " A8 ", name(s, M, e)));
          expect_same(got16, want16, e, str(isa_name(isa), " A16 ", name(s, M, e)));
          // Ranges that start at a later block and end inside one.
          std::vector<float> part = Y0;
          fns.first(A.r, asum.data(), W.p, nullptr, part.data(), ldy, k::Epilogue::store, 16, 21);
          std::vector<float> part_ref = Y0;
          k::ref::quant_matmul_range(A.r, asum.data(), W.p, nullptr, part_ref.data(), ldy, k::Epilogue::store, 16, 21);
          expect_same(part, part_ref, k::Epilogue::store, str(isa_name(isa), " A8 part ", name(s, M, e)));
        }
        // The dispatcher (threads, best ISA) gives the same.
        std::vector<float> got8 = Y0, got16 = Y0;
        k::quant_matmul(A.r, W.p, b.data(), got8.data(), ldy, e);
        k::quant_matmul_f32(X.data(), ldx, M, W.p, b.data(), got16.data(), ldy, e);
        expect_same(got8, want8, e, "quant_matmul " + name(s, M, e));
        expect_same(got16, want16, e, "quant_matmul_f32 " + name(s, M, e));
      }
    }
  }
}

// Many rows into a Y wider than the TLB covers: the AVX-512 path goes over its range in panels
// of weights and chunks of rows; the results stay those of the reference.
TEST(QuantMatmul, PanelledWideProductsMatchTheScalarReference) {
  if (!cpu_has_avx512_vnni()) GTEST_SKIP() << "no AVX-512 VNNI";
  // Y spans 9.6 MB; the range holds about 1.1 MB (int8) and 0.58 MB (int4) of weights; the rows
  // make 10 chunks (tiles of 6).
  const int64_t N = 2000, K = 512, M = 60, ldy = 40000;
  for (const Shape s : {Shape{8, false, 64, K}, Shape{4, true, 128, K}}) {
    QMatrix W(s.bits, N, s.K, s.group, s.asym, 7 + s.bits);
    auto b = random_vec(N, 5);
    auto X = random_vec(M * s.K, 6);
    QRows A(X, M, s.K, s.K);
    std::vector<int32_t> asum(M * (s.K / s.group));
    k::activation_group_sums(A.r, s.group, asum.data());
    for (k::Epilogue e : {k::Epilogue::store, k::Epilogue::accumulate}) {
      auto Y0 = random_vec(M * ldy, 8);
      std::vector<float> want = Y0, got = Y0;
      k::ref::quant_matmul_range(A.r, asum.data(), W.p, b.data(), want.data(), ldy, e, 16, N - 3);
      k::avx512::quant_matmul_range(A.r, asum.data(), W.p, b.data(), got.data(), ldy, e, 16, N - 3);
      expect_same(got, want, e, "panelled " + name(s, M, e));
    }
  }
}

// With unit scales the result is the integer sum_k a * (q - z) itself (exact in float below 2^24):
// computed here from the plain QuantizedWeights, independently of the packed layout.
TEST(QuantMatmul, IntegerPartIsExact) {
  const int64_t N = 45, M = 5;
  for (const Shape& s : shapes()) {
    QMatrix W(s.bits, N, s.K, s.group, s.asym, 7 + s.group, 1.f);
    Rng rng(5);
    std::vector<int8_t> q(M * s.K);
    for (int8_t& v : q) v = (int8_t)(-127 + (int)rng.below(255));
    std::vector<float> ones(M, 1.f), Y(M * N);
    k::quant_matmul({q.data(), s.K, ones.data(), M, s.K}, W.p, nullptr, Y.data(), N, k::Epilogue::store);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        int64_t want = 0;
        for (int64_t c = 0; c < s.K; ++c) {
          const int64_t g = n * (s.K / s.group) + c / s.group;
          want += (int64_t)q[m * s.K + c] * (W.w.value(n, c) - (s.asym ? W.zero[g] : 0));
        }
        ASSERT_EQ(Y[m * N + n], (float)want) << name(s, M, k::Epilogue::store) << " row " << m << " col " << n;
      }
  }
}

// The scaled result against double-precision products of the dequantized values.
TEST(QuantMatmul, CloseToTheDequantizedProduct) {
  const int64_t N = 70, M = 9;
  for (const Shape& s : shapes()) {
    QMatrix W(s.bits, N, s.K, s.group, s.asym, 9 + s.group);
    auto X = random_vec(M * s.K, 13);
    auto b = random_vec(N, 14);
    QRows A(X, M, s.K, s.K);
    std::vector<float> y8(M * N), y16(M * N);
    k::quant_matmul(A.r, W.p, b.data(), y8.data(), N, k::Epilogue::store);
    k::quant_matmul_f32(X.data(), s.K, M, W.p, b.data(), y16.data(), N, k::Epilogue::store);
    const double umax = s.bits == 8 ? 255 : 15;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double want8 = b[n], want16 = b[n], mag8 = 0, mag16 = 0;
        for (int64_t c = 0; c < s.K; ++c) {
          const double wd = W.w.dequantized(n, c), sc = W.scale[n * (s.K / s.group) + c / s.group];
          const double xa = (double)A.scale[m] * A.q[m * s.K + c];
          want8 += xa * wd;
          want16 += X[m * s.K + c] * wd;
          mag8 += std::fabs(xa * wd);
          mag16 += std::fabs(X[m * s.K + c]) * sc * umax;
        }
        // f32 sums over the groups (A8); the offset correction's cancellation (A16).
        EXPECT_NEAR(y8[m * N + n], want8, 1e-6 + 1e-6 * mag8) << name(s, M, k::Epilogue::store);
        EXPECT_NEAR(y16[m * N + n], want16, 1e-6 + 2e-6 * mag16) << name(s, M, k::Epilogue::store);
      }
  }
}

TEST(QuantMatmul, RowResultsDoNotDependOnTheBatchOrThreads) {
  const int64_t N = 517, M = 32;
  const int saved = k::num_threads();
  for (const Shape& s : shapes()) {
    QMatrix W(s.bits, N, s.K, s.group, s.asym, 21);
    auto X = random_vec(M * s.K, 22);
    auto b = random_vec(N, 23);
    QRows A(X, M, s.K, s.K);
    std::vector<float> all8(M * N), all16(M * N), one(N);
    k::quant_matmul(A.r, W.p, b.data(), all8.data(), N, k::Epilogue::gelu);
    k::quant_matmul_f32(X.data(), s.K, M, W.p, b.data(), all16.data(), N, k::Epilogue::gelu);
    for (int threads : {1, saved, 3}) {
      k::set_num_threads(threads);
      for (int64_t m = 0; m < M; m += 5) {
        const k::QuantizedRows row{A.q.data() + m * s.K, s.K, A.scale.data() + m, 1, s.K};
        k::quant_matmul(row, W.p, b.data(), one.data(), N, k::Epilogue::gelu);
        for (int64_t n = 0; n < N; ++n) ASSERT_EQ(one[n], all8[m * N + n]) << name(s, m, {}) << " col " << n;
        // A batch of 3 rows starting here (another tile shape).
        if (m + 3 <= M) {
          std::vector<float> three(3 * N);
          k::quant_matmul_f32(X.data() + m * s.K, s.K, 3, W.p, b.data(), three.data(), N, k::Epilogue::gelu);
          for (int64_t n = 0; n < 3 * N; ++n) ASSERT_EQ(three[n], all16[m * N + n]) << name(s, m, {}) << " A16";
        }
      }
    }
  }
  k::set_num_threads(saved);
}

TEST(QuantMatmul, BadShapesThrow) {
  std::vector<int8_t> q(64 * 96);
  std::vector<float> s(64 * 3);
  k::QuantizedWeights w{8, 64, 96, 48, q.data(), s.data(), nullptr};
  EXPECT_THROW(k::qpacked_bytes(w), Error);  // group not a multiple of 32
  w.group = 64;
  EXPECT_THROW(k::qpacked_bytes(w), Error);  // K not a multiple of the group
  w.group = 16;
  w.K = 96;
  EXPECT_THROW(k::qpacked_bytes(w), Error);
  w.group = 32;
  w.bits = 3;
  EXPECT_THROW(k::qpacked_bytes(w), Error);
  w.bits = 8;
  std::vector<uint8_t> buf(k::qpacked_bytes(w));
  EXPECT_THROW(k::pack_quantized({8, 64, 96, 0, q.data(), s.data(), nullptr}, buf.data()), Error);
  k::pack_quantized(w, buf.data());
  const auto p = k::qpacked_view(w, buf.data());
  std::vector<float> Y(2 * 64);
  std::vector<int8_t> a(2 * 100);
  std::vector<float> sa(2, 1.f);
  EXPECT_THROW(k::quant_matmul({a.data(), 100, sa.data(), 2, 100}, p, nullptr, Y.data(), 64, k::Epilogue::store),
               Error);  // K mismatch
  EXPECT_THROW(k::quant_matmul({a.data(), 96, sa.data(), 2, 96}, p, nullptr, Y.data(), 32, k::Epilogue::store),
               Error);  // ldy < N
  try {
    k::check_quant_shape(8, 100, 64, "layer 3 mlp.c_fc");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer 3 mlp.c_fc"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("K=100"), std::string::npos) << e.what();
  }
}

TEST(QuantMatmul, QuantizeRowsMatchesDirectComputation) {
  for (int64_t K : awkward_sizes()) {
    if (K > 5000) continue;
    const int64_t M = 3, ldx = K + 1, ldq = K + 2;
    auto X = random_vec(M * ldx, 31 + K, 2.f);
    for (int64_t c = 0; c < K; ++c) X[2 * ldx + c] = 0.f;  // an all-zero row
    for (float st : {0.f, 0.01f}) {
      std::vector<int8_t> want(M * ldq, 5), got;
      std::vector<float> ws(M), gs(M);
      k::ref::quantize_rows(X.data(), ldx, M, K, st, want.data(), ldq, ws.data());
      for (int64_t m = 0; m < M; ++m) {
        float amax = 0.f;
        for (int64_t c = 0; c < K; ++c) amax = std::max(amax, std::fabs(X[m * ldx + c]));
        const float scale = st > 0.f ? st : amax / 127.f;
        EXPECT_EQ(ws[m], scale);
        for (int64_t c = 0; c < K; ++c) {
          const float x = X[m * ldx + c];
          const int q = want[m * ldq + c];
          ASSERT_LE(std::abs(q), 127);
          if (scale == 0.f) {
            ASSERT_EQ(q, 0);
          } else if (std::fabs(x / scale) < 127.f) {
            ASSERT_LE(std::fabs(x - scale * q), 0.5f * scale * (1 + 1e-5f)) << "K " << K << " x " << x;
          } else {
            ASSERT_EQ(q, x > 0 ? 127 : -127);
          }
        }
        for (int64_t c = K; c < ldq; ++c) ASSERT_EQ(want[m * ldq + c], 5);  // padding untouched
      }
      for (Isa isa : vector_isas()) {
        got.assign(M * ldq, 5);
        auto fn = isa == Isa::avx512 ? k::avx512::quantize_rows : k::avx2::quantize_rows;
        fn(X.data(), ldx, M, K, st, got.data(), ldq, gs.data());
        ASSERT_EQ(got, want) << isa_name(isa) << " K " << K;
        ASSERT_EQ(gs, ws) << isa_name(isa) << " K " << K;
      }
      got.assign(M * ldq, 5);
      k::quantize_rows(X.data(), ldx, M, K, st, got.data(), ldq, gs.data());
      ASSERT_EQ(got, want) << "dispatch K " << K;
    }
  }
}

// The halves of quantize_rows (each column range's maxima, then the range quantized with the whole
// row's factor) give quantize_rows' bytes and scales, on every ISA, however the row is cut.
TEST(QuantMatmul, QuantizeRowsInTwoHalvesEqualsQuantizeRows) {
  for (int64_t K : {1, 7, 16, 17, 100, 3072}) {
    const int64_t M = 4, ldx = K + 3, ldq = K + 5;
    auto X = random_vec(M * ldx, 77 + K, 3.f);
    for (int64_t c = 0; c < K; ++c) X[1 * ldx + c] = 0.f;  // an all-zero row
    for (float st : {0.f, 0.02f}) {
      std::vector<int8_t> want(M * ldq, 9);
      std::vector<float> ws(M);
      k::ref::quantize_rows(X.data(), ldx, M, K, st, want.data(), ldq, ws.data());
      std::vector<std::pair<std::string, decltype(&k::ref::rows_abs_max)>> maxes = {{"ref", k::ref::rows_abs_max}};
      std::vector<decltype(&k::ref::quantize_rows_inv)> quants = {k::ref::quantize_rows_inv};
      for (Isa isa : vector_isas()) {
        maxes.push_back({isa_name(isa), isa == Isa::avx512 ? k::avx512::rows_abs_max : k::avx2::rows_abs_max});
        quants.push_back(isa == Isa::avx512 ? k::avx512::quantize_rows_inv : k::avx2::quantize_rows_inv);
      }
      for (size_t i = 0; i < maxes.size(); ++i) {
        const int64_t cut = K / 3;  // two ranges: [0, cut) and [cut, K)
        std::vector<float> a0(M), a1(M), inv(M), scales(M);
        maxes[i].second(X.data(), ldx, M, cut, a0.data());
        maxes[i].second(X.data() + cut, ldx, M, K - cut, a1.data());
        for (int64_t m = 0; m < M; ++m) {
          const k::RowScale r = k::row_scale(std::max(a0[m], a1[m]), st);
          inv[m] = r.inv;
          scales[m] = r.scale;
        }
        std::vector<int8_t> got(M * ldq, 9);
        quants[i](X.data(), ldx, M, cut, inv.data(), got.data(), ldq);
        quants[i](X.data() + cut, ldx, M, K - cut, inv.data(), got.data() + cut, ldq);
        ASSERT_EQ(got, want) << maxes[i].first << " K " << K << " static " << st;
        ASSERT_EQ(scales, ws) << maxes[i].first << " K " << K << " static " << st;
      }
    }
  }
}

// ZeroQuant's GELU -> int8 fusion: the product's GELU output, its int8 rows and scales, bitwise those
// of quant_matmul with the GELU epilogue followed by quantize_rows, for one and for several threads.
TEST(QuantMatmul, GeluInt8EqualsProductThenQuantizeRows) {
  const int before = k::num_threads();
  for (const Shape& s : shapes()) {
    for (int64_t N : {5, 77, 400}) {
      QMatrix W(s.bits, N, s.K, s.group, s.asym, 500 + N + s.K + s.bits);
      auto b = random_vec(N, 8);
      for (int64_t M : {1, 3, 8, 129}) {
        auto X = random_vec(M * s.K, 9 + M);
        QRows A(X, M, s.K, s.K);
        for (float st : {0.f, 0.005f}) {
          for (int threads : {1, 2}) {
            k::set_num_threads(threads);
            const int64_t ldh = N + 2, ldq = N + 7;
            std::vector<float> want_h(M * ldh, 1.f), got_h(M * ldh, 1.f), want_s(M), got_s(M);
            std::vector<int8_t> want_q(M * ldq, 3), got_q(M * ldq, 3);
            k::quant_matmul(A.r, W.p, b.data(), want_h.data(), ldh, k::Epilogue::gelu);
            k::quantize_rows(want_h.data(), ldh, M, N, st, want_q.data(), ldq, want_s.data());
            k::quant_matmul_gelu_int8(A.r, W.p, b.data(), got_h.data(), ldh, st, got_q.data(), ldq, got_s.data());
            const std::string what = str(name(s, M, k::Epilogue::gelu), " N ", N, " static ", st, " threads ", threads);
            ASSERT_EQ(got_h, want_h) << what;
            ASSERT_EQ(got_q, want_q) << what;  // padding columns [N, ldq) untouched in both
            ASSERT_EQ(got_s, want_s) << what;
          }
        }
      }
    }
  }
  k::set_num_threads(before);
  QMatrix W(8, 32, 64, 64, false, 1);
  std::vector<int8_t> a(2 * 64), q(2 * 32);
  std::vector<float> sa(2, 1.f), h(2 * 32), sq(2);
  EXPECT_THROW(k::quant_matmul_gelu_int8({a.data(), 64, sa.data(), 2, 64}, W.p, nullptr, h.data(), 32, 0.f, q.data(),
                                         16, sq.data()),
               Error);  // ldq < N
}
