#include "gannet/kernels/cross_entropy.h"

#include <omp.h>

#include <string>

#include "gannet/core/error.h"
#include "kernel_test_util.h"

using namespace gannet;
using namespace gannet::testing;
namespace k = gannet::kernels;

namespace {

// Random targets in [0, V), with about one row in `ignore_every` set to -1 (0: none).
std::vector<int32_t> random_targets(int64_t N, int64_t V, uint64_t seed, int ignore_every) {
  Rng rng(seed);
  std::vector<int32_t> t(N);
  for (auto& x : t) {
    x = (int32_t)rng.below((uint64_t)V);
    if (ignore_every && rng.below((uint64_t)ignore_every) == 0) x = -1;
  }
  return t;
}

float fb_isa(Isa isa, float* x, const int32_t* t, float* l, int64_t N, int64_t V, float s) {
  if (isa == Isa::avx512) return k::avx512::cross_entropy_forward_backward(x, t, l, N, V, s);
  return k::avx2::cross_entropy_forward_backward(x, t, l, N, V, s);
}

float f_isa(Isa isa, const float* x, const int32_t* t, float* l, int64_t N, int64_t V) {
  if (isa == Isa::avx512) return k::avx512::cross_entropy_forward(x, t, l, N, V);
  return k::avx2::cross_entropy_forward(x, t, l, N, V);
}

// An independent double-precision forward: per-row -log softmax[target], 0 for ignored rows.
std::vector<double> losses_double(const std::vector<double>& x, const std::vector<int32_t>& t, int64_t N,
                                  int64_t V) {
  std::vector<double> out(N, 0.0);
  for (int64_t i = 0; i < N; ++i) {
    if (t[i] < 0) continue;
    double mx = -1e300;
    for (int64_t j = 0; j < V; ++j) mx = std::max(mx, x[i * V + j]);
    double s = 0;
    for (int64_t j = 0; j < V; ++j) s += std::exp(x[i * V + j] - mx);
    out[i] = mx + std::log(s) - x[i * V + t[i]];
  }
  return out;
}

}  // namespace

TEST(CrossEntropy, VectorMatchesScalarReference) {
  GANNET_SKIP_WITHOUT_VECTOR_ISA();
  for (Isa isa : vector_isas()) {
    uint64_t seed = 1;
    for (int64_t N : {1, 3, 7, 17, 33}) {
      for (int64_t V : {1, 3, 7, 16, 17, 33, 97, 1031, 8192}) {
        for (float scale : {1.f, 8.f}) {
          auto x = random_vec(N * V, seed++, scale);
          auto t = random_targets(N, V, seed++, 4);
          const float gs = 1.f / (float)N;
          std::vector<float> want_l(N, -1.f), got_l(N, -2.f), got_lf(N, -3.f);
          auto want_g = x, got_g = x;
          float want = k::ref::cross_entropy_forward_backward(want_g.data(), t.data(), want_l.data(), N, V, gs);
          float got = fb_isa(isa, got_g.data(), t.data(), got_l.data(), N, V, gs);
          float gotf = f_isa(isa, x.data(), t.data(), got_lf.data(), N, V);
          SCOPED_TRACE(::testing::Message() << isa_name(isa) << " N=" << N << " V=" << V << " scale=" << scale);
          ASSERT_NEAR(got, want, 2e-6f + 2e-6f * std::fabs(want));
          ASSERT_EQ(gotf, got);
          expect_close(got_l, want_l, 2e-6f, 2e-6f, "losses");
          expect_close(got_lf, got_l, 0.f, 0.f, "forward-only losses");
          expect_close(got_g, want_g, 2e-5f, 1e-8f, "gradient");
        }
      }
    }
  }
}

TEST(CrossEntropy, LargeBatchParallelPathAndDeterminism) {
  // N*V well above the parallel threshold; 1 and 2 threads must agree bit for bit.
  const int64_t N = 300, V = 1031;
  auto x = random_vec(N * V, 5, 3.f);
  auto t = random_targets(N, V, 6, 5);
  auto want_g = x, g1 = x, g2 = x;
  std::vector<float> want_l(N), l1(N), l2(N);
  float want = k::ref::cross_entropy_forward_backward(want_g.data(), t.data(), want_l.data(), N, V, 0.5f);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  float m1 = k::cross_entropy_forward_backward(g1.data(), t.data(), l1.data(), N, V, 0.5f);
  omp_set_num_threads(2);
  float m2 = k::cross_entropy_forward_backward(g2.data(), t.data(), l2.data(), N, V, 0.5f);
  omp_set_num_threads(saved);
  ASSERT_EQ(m1, m2);
  ASSERT_EQ(l1, l2);
  ASSERT_EQ(g1, g2);
  ASSERT_NEAR(m1, want, 1e-5f * want);
  expect_close(l1, want_l, 2e-6f, 2e-6f, "losses");
  expect_close(g1, want_g, 2e-5f, 1e-8f, "gradient");
}

TEST(CrossEntropy, BackwardMatchesFiniteDifferences) {
  // d(grad_scale * sum_i loss_i)/dx by central differences of an independent double forward.
  const int64_t N = 4, V = 7;
  const float gs = 0.37f;
  std::vector<int32_t> t = {3, -1, 0, 6};
  auto xf = random_vec(N * V, 21, 2.f);
  std::vector<double> x(xf.begin(), xf.end());
  auto total = [&]() {
    double s = 0;
    for (double l : losses_double(x, t, N, V)) s += l;
    return gs * s;
  };
  std::vector<Isa> isas = vector_isas();
  isas.push_back(Isa::scalar);
  for (Isa isa : isas) {
    auto g = xf;
    std::vector<float> losses(N);
    float mean = isa == Isa::scalar
                     ? k::ref::cross_entropy_forward_backward(g.data(), t.data(), losses.data(), N, V, gs)
                     : fb_isa(isa, g.data(), t.data(), losses.data(), N, V, gs);
    auto ld = losses_double(x, t, N, V);
    EXPECT_NEAR(mean, (ld[0] + ld[2] + ld[3]) / 3.0, 1e-6) << isa_name(isa);
    for (int64_t i = 0; i < N; ++i) EXPECT_NEAR(losses[i], ld[i], 1e-6 + 1e-6 * ld[i]) << isa_name(isa);
    const double h = 1e-5;
    for (int64_t i = 0; i < N * V; ++i) {
      double keep = x[i];
      x[i] = keep + h;
      double lp = total();
      x[i] = keep - h;
      double lm = total();
      x[i] = keep;
      double fd = (lp - lm) / (2 * h);
      ASSERT_NEAR(g[i], fd, 2e-6 + 1e-5 * std::fabs(fd)) << isa_name(isa) << " element " << i;
    }
  }
}

TEST(CrossEntropy, IgnoreIndex) {
  const int64_t N = 5, V = 33;
  std::vector<int32_t> t = {-1, 4, -1, 32, 0};
  auto x = random_vec(N * V, 31, 2.f);
  std::vector<double> xd(x.begin(), x.end());
  auto ld = losses_double(xd, t, N, V);
  std::vector<Isa> isas = vector_isas();
  isas.push_back(Isa::scalar);
  for (Isa isa : isas) {
    auto g = x;
    std::vector<float> losses(N, 99.f);
    float mean = isa == Isa::scalar
                     ? k::ref::cross_entropy_forward_backward(g.data(), t.data(), losses.data(), N, V, 1.f)
                     : fb_isa(isa, g.data(), t.data(), losses.data(), N, V, 1.f);
    // The mean counts only the 3 non-ignored rows.
    EXPECT_NEAR(mean, (ld[1] + ld[3] + ld[4]) / 3.0, 1e-6) << isa_name(isa);
    for (int64_t i : {0, 2}) {
      EXPECT_EQ(losses[i], 0.f);
      for (int64_t j = 0; j < V; ++j) ASSERT_EQ(g[i * V + j], 0.f) << isa_name(isa) << " row " << i;
    }
    // Non-ignored gradient rows sum to 0 (softmax sums to 1, minus the one-hot).
    for (int64_t i : {1, 3, 4}) {
      double s = 0;
      for (int64_t j = 0; j < V; ++j) s += g[i * V + j];
      EXPECT_NEAR(s, 0.0, 1e-6) << isa_name(isa);
      EXPECT_LT(g[i * V + t[i]], 0.f);
    }
    // Every row ignored: mean 0, all gradients 0.
    std::vector<int32_t> all(N, -1);
    auto g2 = x;
    float m2 = isa == Isa::scalar ? k::ref::cross_entropy_forward_backward(g2.data(), all.data(), nullptr, N, V, 1.f)
                                  : fb_isa(isa, g2.data(), all.data(), nullptr, N, V, 1.f);
    EXPECT_EQ(m2, 0.f);
    for (float v : g2) ASSERT_EQ(v, 0.f);
  }
}

TEST(CrossEntropy, NumericallyStableForLargeLogits) {
  // Shifting a row by a constant changes nothing; a logit of 1e4 must not overflow.
  const int64_t N = 3, V = 97;
  std::vector<int32_t> t = {0, 50, 96};
  auto x = random_vec(N * V, 41, 1.f);
  auto shifted = x;
  for (float& v : shifted) v += 1e4f;
  std::vector<double> xd(x.begin(), x.end());
  auto ld = losses_double(xd, t, N, V);
  for (Isa isa : vector_isas()) {
    std::vector<float> losses(N);
    auto g = shifted;
    float mean = fb_isa(isa, g.data(), t.data(), losses.data(), N, V, 1.f);
    ASSERT_TRUE(std::isfinite(mean));
    // Shifting by 1e4 rounds each logit to 1e4 + k/1024: compare loosely against the unshifted loss.
    for (int64_t i = 0; i < N; ++i) EXPECT_NEAR(losses[i], ld[i], 2e-3) << isa_name(isa);
    for (float v : g) ASSERT_TRUE(std::isfinite(v));
  }
  // One dominant logit: loss ~ 0 and finite, gradient ~ 0.
  std::vector<float> y(V, 0.f);
  y[5] = 200.f;
  int32_t t5 = 5;
  float loss = -1.f;
  float mean = k::cross_entropy_forward_backward(y.data(), &t5, &loss, 1, V, 1.f);
  EXPECT_NEAR(mean, 0.f, 1e-6f);
  EXPECT_NEAR(loss, 0.f, 1e-6f);
  for (float v : y) EXPECT_NEAR(v, 0.f, 1e-6f);
}

TEST(CrossEntropy, BadTargetThrowsBeforeWriting) {
  const int64_t N = 3, V = 10;
  auto x = random_vec(N * V, 51);
  std::vector<Isa> isas = vector_isas();
  isas.push_back(Isa::scalar);
  for (int32_t bad : {-2, 10, 12345}) {
    std::vector<int32_t> t = {1, bad, 2};
    for (Isa isa : isas) {
      auto g = x;
      std::vector<float> losses(N, 7.f);
      try {
        if (isa == Isa::scalar) k::ref::cross_entropy_forward_backward(g.data(), t.data(), losses.data(), N, V, 1.f);
        else fb_isa(isa, g.data(), t.data(), losses.data(), N, V, 1.f);
        FAIL() << "no error for target " << bad << " on " << isa_name(isa);
      } catch (const Error& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find(std::to_string(bad)), std::string::npos) << msg;
        EXPECT_NE(msg.find("row 1"), std::string::npos) << msg;
      }
      ASSERT_EQ(g, x) << "logits written before the check";
      for (float l : losses) ASSERT_EQ(l, 7.f);
    }
    EXPECT_THROW(k::cross_entropy_forward(x.data(), t.data(), nullptr, N, V), Error);
  }
}

TEST(CrossEntropy, VocabularySlicesCombineToTheWholeLoss) {
  // t ranks each hold V/t columns: the maximum of their row maxima, the sums of their exponentials
  // and target logits give each row's loss, and each slice's gradient is the whole gradient's
  // columns. Every ISA, against the whole-row reference kernel.
  std::vector<Isa> isas = vector_isas();
  isas.push_back(Isa::scalar);
  uint64_t seed = 200;
  for (Isa isa : isas) {
    for (auto NV : {std::pair<int64_t, int64_t>{5, 6}, {33, 96}, {64, 1030}}) {
      const int64_t N = NV.first, V = NV.second;  // not a structured binding: the lambdas below use N
      auto x = random_vec(N * V, seed++, 3.f);
      auto tg = random_targets(N, V, seed++, 4);
      std::vector<float> want_l(N), want_g = x;
      const float gs = 0.7f;
      k::ref::cross_entropy_forward_backward(want_g.data(), tg.data(), want_l.data(), N, V, gs);
      for (int64_t t : {1, 2, 3}) {
        if (V % t) continue;
        SCOPED_TRACE(::testing::Message() << isa_name(isa) << " N=" << N << " V=" << V << " t=" << t);
        const int64_t n = V / t;
        std::vector<std::vector<float>> cols(t, std::vector<float>(N * n));
        for (int64_t r = 0; r < t; ++r)
          for (int64_t i = 0; i < N; ++i)
            for (int64_t j = 0; j < n; ++j) cols[r][i * n + j] = x[i * V + r * n + j];
        auto row_max = [&](const float* l, float* m) {
          if (isa == Isa::scalar) k::ref::cross_entropy_row_max(l, m, N, n);
          else if (isa == Isa::avx512) k::avx512::cross_entropy_row_max(l, m, N, n);
          else k::avx2::cross_entropy_row_max(l, m, N, n);
        };
        auto sums = [&](float* l, int64_t first, const float* m, float* s, float* z) {
          if (isa == Isa::scalar) k::ref::cross_entropy_slice_sums(l, l, tg.data(), first, m, s, z, N, n);
          else if (isa == Isa::avx512) k::avx512::cross_entropy_slice_sums(l, l, tg.data(), first, m, s, z, N, n);
          else k::avx2::cross_entropy_slice_sums(l, l, tg.data(), first, m, s, z, N, n);
        };
        auto backward = [&](float* e, int64_t first, const float* s) {
          if (isa == Isa::scalar) k::ref::cross_entropy_slice_backward(e, tg.data(), first, s, N, n, gs);
          else if (isa == Isa::avx512) k::avx512::cross_entropy_slice_backward(e, tg.data(), first, s, N, n, gs);
          else k::avx2::cross_entropy_slice_backward(e, tg.data(), first, s, N, n, gs);
        };
        std::vector<float> mx(N, -INFINITY), m(N), s(N), z(N), sum_s(N, 0.f), sum_z(N, 0.f);
        for (int64_t r = 0; r < t; ++r) {
          row_max(cols[r].data(), m.data());
          for (int64_t i = 0; i < N; ++i) mx[i] = std::max(mx[i], m[i]);
        }
        for (int64_t r = 0; r < t; ++r) {
          sums(cols[r].data(), r * n, mx.data(), s.data(), z.data());
          for (int64_t i = 0; i < N; ++i) sum_s[i] += s[i], sum_z[i] += z[i];
        }
        for (int64_t i = 0; i < N; ++i) {
          if (tg[i] < 0) continue;
          EXPECT_NEAR(std::log((double)sum_s[i]) + mx[i] - sum_z[i], want_l[i], 2e-5 + 1e-5 * want_l[i]) << "row " << i;
        }
        for (int64_t r = 0; r < t; ++r) {
          backward(cols[r].data(), r * n, sum_s.data());
          for (int64_t i = 0; i < N; ++i)
            for (int64_t j = 0; j < n; ++j)
              ASSERT_NEAR(cols[r][i * n + j], want_g[i * V + r * n + j], 1e-6) << "row " << i << " column " << r * n + j;
        }
      }
    }
  }
}
