#include "gannet/kernels/adamw.h"

#include <omp.h>

#include "gannet/core/error.h"
#include "kernel_test_util.h"

using namespace gannet;
using namespace gannet::testing;
namespace k = gannet::kernels;

namespace {

struct Hp {
  float lr, b1, b2, eps, wd, gs;
};

void update_isa(Isa isa, float* p, const float* g, float* m, float* v, int64_t n, const Hp& h, int64_t step) {
  if (isa == Isa::avx512) k::avx512::adamw_update(p, g, m, v, n, h.lr, h.b1, h.b2, h.eps, h.wd, step, h.gs);
  else if (isa == Isa::avx2) k::avx2::adamw_update(p, g, m, v, n, h.lr, h.b1, h.b2, h.eps, h.wd, step, h.gs);
  else k::ref::adamw_update(p, g, m, v, n, h.lr, h.b1, h.b2, h.eps, h.wd, step, h.gs);
}

double sumsq_isa(Isa isa, const float* x, int64_t n) {
  if (isa == Isa::avx512) return k::avx512::sum_squares(x, n);
  if (isa == Isa::avx2) return k::avx2::sum_squares(x, n);
  return k::ref::sum_squares(x, n);
}

// Hand-written AdamW (torch.optim.AdamW's algorithm) with all state in double.
struct AdamDouble {
  std::vector<double> p, m, v;
  void step(const std::vector<float>& grad, const Hp& h, int t) {
    double bc1 = 1, bc2 = 1;
    for (int i = 0; i < t; ++i) {
      bc1 *= h.b1;
      bc2 *= h.b2;
    }
    bc1 = 1 - bc1;
    bc2 = 1 - bc2;
    for (size_t i = 0; i < p.size(); ++i) {
      double g = (double)grad[i] * h.gs;
      p[i] *= 1.0 - (double)h.lr * h.wd;
      m[i] = (double)h.b1 * m[i] + (1.0 - h.b1) * g;
      v[i] = (double)h.b2 * v[i] + (1.0 - h.b2) * g * g;
      double mhat = m[i] / bc1, vhat = v[i] / bc2;
      p[i] -= (double)h.lr * mhat / (std::sqrt(vhat) + h.eps);
    }
  }
};

std::vector<Isa> all_isas() {
  auto v = vector_isas();
  v.insert(v.begin(), Isa::scalar);
  return v;
}

}  // namespace

TEST(AdamW, VectorMatchesScalarReference) {
  GANNET_SKIP_WITHOUT_VECTOR_ISA();
  const Hp h{3e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.5f};
  for (Isa isa : vector_isas()) {
    for (int64_t n : awkward_sizes()) {
      auto p_ref = random_vec(n, n, 1.f);
      std::vector<float> m_ref(n, 0.f), v_ref(n, 0.f);
      auto p = p_ref, m = m_ref, v = v_ref;
      for (int step = 1; step <= 4; ++step) {
        auto g = random_vec(n, 1000 * step + n, step == 3 ? 1e-3f : 2.f);
        k::ref::adamw_update(p_ref.data(), g.data(), m_ref.data(), v_ref.data(), n, h.lr, h.b1, h.b2, h.eps, h.wd,
                             step, h.gs);
        update_isa(isa, p.data(), g.data(), m.data(), v.data(), n, h, step);
        SCOPED_TRACE(::testing::Message() << isa_name(isa) << " n=" << n << " step=" << step);
        expect_close(p, p_ref, 1e-6f, 1e-7f, "param");
        // m = b1 m + (1-b1) g cancels: its error scales with the terms (~0.1), not with m.
        expect_close(m, m_ref, 1e-6f, 1e-7f, "m");
        expect_close(v, v_ref, 1e-6f, 1e-12f, "v");
      }
    }
  }
}

TEST(AdamW, MatchesHandComputedDoubleReference) {
  // Several steps against a double-precision AdamW; includes weight decay, grad scaling and
  // gradients much smaller than eps in some elements.
  const int64_t n = 1031;
  for (Hp h : {Hp{1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f, 1.f}, Hp{3e-3f, 0.8f, 0.95f, 1e-6f, 0.1f, 0.25f}}) {
    for (Isa isa : all_isas()) {
      auto p = random_vec(n, 77, 1.f);
      std::vector<float> m(n, 0.f), v(n, 0.f);
      AdamDouble d{std::vector<double>(p.begin(), p.end()), std::vector<double>(n, 0.0), std::vector<double>(n, 0.0)};
      for (int step = 1; step <= 6; ++step) {
        auto g = random_vec(n, 500 + step, 1.f);
        for (int64_t i = 0; i < n; i += 10) g[i] *= 1e-6f;
        update_isa(isa, p.data(), g.data(), m.data(), v.data(), n, h, step);
        d.step(g, h, step);
        for (int64_t i = 0; i < n; ++i) {
          ASSERT_NEAR(p[i], d.p[i], 2e-6 * (1 + std::fabs(d.p[i]))) << isa_name(isa) << " step " << step << " i " << i;
          ASSERT_NEAR(m[i], d.m[i], 1e-6 * std::fabs(d.m[i]) + 1e-7) << isa_name(isa);
          ASSERT_NEAR(v[i], d.v[i], 1e-6 * std::fabs(d.v[i]) + 1e-18) << isa_name(isa);
        }
      }
    }
  }
}

TEST(AdamW, FirstStepByHand) {
  // Step 1, m = v = 0: mhat = g, vhat = g^2, so param = p(1 - lr wd) - lr g / (|g| + eps).
  const float lr = 0.1f, wd = 0.5f, eps = 1e-3f;
  std::vector<float> p = {1.f, -2.f, 0.5f, 3.f, 0.f, -1.f, 2.f, 4.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f};
  std::vector<float> g = {2.f, 2.f, -1.f, 0.f, 1e-3f, 4.f, -4.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f};
  const int64_t n = (int64_t)p.size();
  for (Isa isa : all_isas()) {
    auto q = p;
    std::vector<float> m(n, 0.f), v(n, 0.f);
    update_isa(isa, q.data(), g.data(), m.data(), v.data(), n, Hp{lr, 0.9f, 0.999f, eps, wd, 2.f}, 1);
    for (int64_t i = 0; i < n; ++i) {
      double gg = 2.0 * g[i];
      double want = p[i] * (1 - (double)lr * wd) - (double)lr * gg / (std::fabs(gg) + (double)eps);
      ASSERT_NEAR(q[i], want, 1e-6) << isa_name(isa) << " i " << i;
      ASSERT_NEAR(m[i], (1.0 - (double)0.9f) * gg, 1e-6);  // the float betas, not 0.9 and 0.999
      ASSERT_NEAR(v[i], (1.0 - (double)0.999f) * gg * gg, 1e-7);
    }
  }
}

TEST(AdamW, GradScaleAndBadStep) {
  const int64_t n = 97;
  auto p0 = random_vec(n, 1), g = random_vec(n, 2);
  std::vector<float> g2(n);
  for (int64_t i = 0; i < n; ++i) g2[i] = 4.f * g[i];
  for (Isa isa : all_isas()) {
    auto pa = p0, pb = p0;
    std::vector<float> ma(n, 0.f), va(n, 0.f), mb(n, 0.f), vb(n, 0.f);
    update_isa(isa, pa.data(), g.data(), ma.data(), va.data(), n, Hp{1e-2f, 0.9f, 0.99f, 1e-8f, 0.f, 1.f}, 1);
    update_isa(isa, pb.data(), g2.data(), mb.data(), vb.data(), n, Hp{1e-2f, 0.9f, 0.99f, 1e-8f, 0.f, 0.25f}, 1);
    expect_close(pb, pa, 0.f, 1e-7f, isa_name(isa));
    expect_close(mb, ma, 1e-7f, 0.f, isa_name(isa));
    EXPECT_THROW(update_isa(isa, pa.data(), g.data(), ma.data(), va.data(), n, Hp{1e-2f, 0.9f, 0.99f, 1e-8f, 0.f, 1.f}, 0),
                 Error);
  }
  EXPECT_THROW(k::adamw_update(p0.data(), g.data(), p0.data(), p0.data(), n, 1e-3f, 0.9f, 0.99f, 1e-8f, 0.f, 0, 1.f),
               Error);
}

TEST(AdamW, SumSquaresMatchesDouble) {
  for (Isa isa : all_isas()) {
    for (int64_t n : awkward_sizes()) {
      auto x = random_vec(n, 9 + n, 3.f);
      double want = 0;
      for (float v : x) want += (double)v * v;
      EXPECT_NEAR(sumsq_isa(isa, x.data(), n), want, 1e-10 * want) << isa_name(isa) << " n=" << n;
    }
    EXPECT_EQ(sumsq_isa(isa, nullptr, 0), 0.0);
  }
  // A long run of equal values, where a plain float accumulator drifts by far more than 1e-9.
  const int64_t n = 3000017;
  std::vector<float> x(n, 0.1f);
  const double want = (double)n * (double)0.1f * (double)0.1f;
  const int saved = omp_get_max_threads();
  for (Isa isa : all_isas()) {
    omp_set_num_threads(1);
    double s1 = sumsq_isa(isa, x.data(), n);
    omp_set_num_threads(2);
    double s2 = sumsq_isa(isa, x.data(), n);
    EXPECT_EQ(s1, s2) << isa_name(isa) << ": depends on the thread count";
    EXPECT_NEAR(s1, want, 1e-9 * want) << isa_name(isa);
  }
  omp_set_num_threads(saved);
  EXPECT_NEAR(k::sum_squares(x.data(), n), want, 1e-9 * want);
}
