#include "gannet/kernels/layernorm.h"

#include "kernel_test_util.h"

using namespace gannet;
using namespace gannet::testing;
namespace k = gannet::kernels;

namespace {

struct Impl {
  const char* name;
  decltype(&k::ref::layernorm_forward) fwd;
  decltype(&k::ref::layernorm_backward) bwd;
};

std::vector<Impl> vector_impls() {
  std::vector<Impl> out;
  for (Isa isa : vector_isas()) {
    if (isa == Isa::avx2) out.push_back({"avx2", k::avx2::layernorm_forward, k::avx2::layernorm_backward});
    if (isa == Isa::avx512) out.push_back({"avx512", k::avx512::layernorm_forward, k::avx512::layernorm_backward});
  }
  return out;
}

std::vector<Impl> all_impls() {
  std::vector<Impl> out = {{"ref", k::ref::layernorm_forward, k::ref::layernorm_backward},
                           {"dispatch", k::layernorm_forward, k::layernorm_backward}};
  for (const Impl& i : vector_impls()) out.push_back(i);
  return out;
}

const std::vector<int64_t> kShapes = {1, 3, 7, 16, 17, 33, 384, 1031};

// Independent double-precision forward, written from the definition (one-pass E[x^2] - E[x]^2 is
// avoided; this uses the centred sum).
void layernorm_double(const std::vector<double>& x, const std::vector<double>& g, const std::vector<double>& b,
                      std::vector<double>& y, int64_t rows, int64_t cols, double eps,
                      std::vector<double>* mean = nullptr, std::vector<double>* rstd = nullptr) {
  y.assign(rows * cols, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    double m = 0, v = 0;
    for (int64_t c = 0; c < cols; ++c) m += x[r * cols + c];
    m /= cols;
    for (int64_t c = 0; c < cols; ++c) v += (x[r * cols + c] - m) * (x[r * cols + c] - m);
    v /= cols;
    double s = 1.0 / std::sqrt(v + eps);
    for (int64_t c = 0; c < cols; ++c) y[r * cols + c] = (x[r * cols + c] - m) * s * g[c] + b[c];
    if (mean) (*mean)[r] = m;
    if (rstd) (*rstd)[r] = s;
  }
}

std::vector<double> to_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

std::vector<float> offset(std::vector<float> v, float o) {
  for (auto& x : v) x += o;
  return v;
}

}  // namespace

TEST(LayerNorm, ForwardMatchesDoubleDefinition) {
  const float eps = 1e-5f;
  for (const Impl& im : all_impls()) {
    for (int64_t rows : {1, 5}) {
      for (int64_t cols : {1, 7, 33, 1031}) {
        auto x = offset(random_vec(rows * cols, rows * 100 + cols, 2.f), 3.f);
        auto g = random_vec(cols, cols + 1), b = random_vec(cols, cols + 2);
        std::vector<double> yd, md(rows), sd(rows);
        layernorm_double(to_double(x), to_double(g), to_double(b), yd, rows, cols, eps, &md, &sd);
        std::vector<float> y(rows * cols), m(rows), s(rows);
        im.fwd(x.data(), g.data(), b.data(), y.data(), m.data(), s.data(), rows, cols, eps);
        expect_close(y, std::vector<float>(yd.begin(), yd.end()), 1e-5f, 1e-5f, im.name);
        expect_close(m, std::vector<float>(md.begin(), md.end()), 1e-6f, 1e-6f, im.name);
        expect_close(s, std::vector<float>(sd.begin(), sd.end()), 1e-5f, 1e-6f, im.name);
      }
    }
  }
}

TEST(LayerNorm, VectorMatchesScalarReference) {
  GANNET_SKIP_WITHOUT_VECTOR_ISA();
  // Inputs are slices of one random pool and buffers are reused across shapes: drawing fresh
  // normals and touching fresh pages for every shape would dominate the run time.
  const float eps = 1e-5f;
  const auto pool = random_vec(1031 * 1031 + 4096, 1, 2.f);
  auto fill = [&](std::vector<float>& v, int64_t n, int64_t seed, float scale, float shift) {
    const int64_t off = (seed * 7919) % 4096;
    v.reserve(1031 * 1031);  // grow once, not once per new largest shape
    v.resize(n);
    for (int64_t i = 0; i < n; ++i) v[i] = scale * pool[off + i] + shift;
  };
  std::vector<float> x, g, b, dy, dg0, db0, yw, mw, sw, yg, mg, sg, dxw, dxg, dgw, dbw, dgg, dbg;
  for (int64_t rows : kShapes) {
    for (int64_t cols : kShapes) {
      const int64_t n = rows * cols;
      fill(x, n, rows * 13 + cols, 1.f, 0.5f);
      fill(g, cols, cols + 11, 0.25f, 1.f);
      fill(b, cols, cols + 12, 0.5f, 0.f);
      fill(dy, n, rows * 31 + cols + 5, 0.5f, 0.f);
      fill(dg0, cols, cols + 13, 0.5f, 0.f);  // parameter grads start non-zero (accumulation)
      fill(db0, cols, cols + 14, 0.5f, 0.f);
      yw.resize(n), mw.resize(rows), sw.resize(rows), dxw.resize(n);
      k::ref::layernorm_forward(x.data(), g.data(), b.data(), yw.data(), mw.data(), sw.data(), rows, cols, eps);
      dgw = dg0, dbw = db0;
      k::ref::layernorm_backward(x.data(), g.data(), mw.data(), sw.data(), dy.data(), dxw.data(), dgw.data(),
                                 dbw.data(), rows, cols);
      for (const Impl& im : vector_impls()) {
        SCOPED_TRACE(::testing::Message() << im.name << " rows=" << rows << " cols=" << cols);
        yg.assign(n, 7.f), mg.assign(rows, 7.f), sg.assign(rows, 7.f);
        im.fwd(x.data(), g.data(), b.data(), yg.data(), mg.data(), sg.data(), rows, cols, eps);
        expect_close(yg, yw, 1e-5f, 1e-5f, "y");
        expect_close(mg, mw, 1e-6f, 1e-6f, "mean");
        expect_close(sg, sw, 1e-5f, 1e-6f, "rstd");
        // Backward from the same saved statistics.
        dxg.assign(n, 7.f), dgg = dg0, dbg = db0;
        im.bwd(x.data(), g.data(), mw.data(), sw.data(), dy.data(), dxg.data(), dgg.data(), dbg.data(), rows, cols);
        // dx is a difference of O(1) terms scaled by rstd (1/sqrt(eps) for a one-column row).
        float dx_atol = cols == 1 ? 1e-3f : 2e-5f;
        expect_close(dxg, dxw, 1e-4f, dx_atol, "dx");
        expect_close(dgg, dgw, 1e-5f, 2e-5f * std::sqrt((float)rows), "dgamma");
        expect_close(dbg, dbw, 1e-5f, 2e-5f * std::sqrt((float)rows), "dbeta");
      }
    }
  }
}

TEST(LayerNorm, StatisticsAreOptionalAndOutputMayAliasInput) {
  const int64_t rows = 33, cols = 17;
  for (const Impl& im : all_impls()) {
    auto x = random_vec(rows * cols, 4, 3.f);
    auto g = random_vec(cols, 5), b = random_vec(cols, 6);
    std::vector<float> want(rows * cols), m(rows), s(rows);
    im.fwd(x.data(), g.data(), b.data(), want.data(), m.data(), s.data(), rows, cols, 1e-5f);
    std::vector<float> got(rows * cols);
    im.fwd(x.data(), g.data(), b.data(), got.data(), nullptr, nullptr, rows, cols, 1e-5f);
    expect_close(got, want, 0.f, 0.f, im.name);
    im.fwd(x.data(), g.data(), b.data(), x.data(), nullptr, nullptr, rows, cols, 1e-5f);  // in place
    expect_close(x, want, 0.f, 0.f, im.name);
  }
}

TEST(LayerNorm, BackwardMatchesFiniteDifferences) {
  // L = sum_rc w[r,c] y[r,c], so dL/dy = w. Central differences on the double forward.
  const int64_t rows = 4, cols = 19;
  const double eps = 1e-5, h = 1e-4;
  const auto x = offset(random_vec(rows * cols, 21, 1.5f), -0.7f);
  const auto g = offset(random_vec(cols, 22, 0.5f), 1.f), b = random_vec(cols, 23);
  const auto w = random_vec(rows * cols, 24);
  auto xd = to_double(x), gd = to_double(g), bd = to_double(b);
  auto loss = [&]() {
    std::vector<double> y;
    layernorm_double(xd, gd, bd, y, rows, cols, eps);
    double l = 0;
    for (int64_t i = 0; i < rows * cols; ++i) l += w[i] * y[i];
    return l;
  };
  auto fd = [&](double& v) {
    double v0 = v;
    v = v0 + h;
    double lp = loss();
    v = v0 - h;
    double lm = loss();
    v = v0;
    return (lp - lm) / (2 * h);
  };
  std::vector<double> fdx(rows * cols), fdg(cols), fdb(cols);
  for (int64_t i = 0; i < rows * cols; ++i) fdx[i] = fd(xd[i]);
  for (int64_t c = 0; c < cols; ++c) fdg[c] = fd(gd[c]), fdb[c] = fd(bd[c]);

  const auto dg0 = random_vec(cols, 25), db0 = random_vec(cols, 26);
  for (const Impl& im : all_impls()) {
    SCOPED_TRACE(im.name);
    std::vector<float> y(rows * cols), m(rows), s(rows);
    im.fwd(x.data(), g.data(), b.data(), y.data(), m.data(), s.data(), rows, cols, (float)eps);
    std::vector<float> dx(rows * cols, 1e3f), dg = dg0, db = db0;  // dx garbage: it must be overwritten
    im.bwd(x.data(), g.data(), m.data(), s.data(), w.data(), dx.data(), dg.data(), db.data(), rows, cols);
    for (int64_t i = 0; i < rows * cols; ++i) EXPECT_NEAR(dx[i], fdx[i], 2e-5 + 1e-4 * std::fabs(fdx[i])) << "dx " << i;
    for (int64_t c = 0; c < cols; ++c) {
      EXPECT_NEAR(dg[c], dg0[c] + fdg[c], 2e-5 + 1e-4 * std::fabs(fdg[c])) << "dgamma " << c;
      EXPECT_NEAR(db[c], db0[c] + fdb[c], 2e-5 + 1e-4 * std::fabs(fdb[c])) << "dbeta " << c;
    }
    // A second call accumulates again into dgamma/dbeta and rewrites dx identically.
    std::vector<float> dx2(rows * cols, -5.f);
    im.bwd(x.data(), g.data(), m.data(), s.data(), w.data(), dx2.data(), dg.data(), db.data(), rows, cols);
    expect_close(dx2, dx, 0.f, 0.f, "dx second call");
    for (int64_t c = 0; c < cols; ++c) {
      EXPECT_NEAR(dg[c], dg0[c] + 2 * fdg[c], 4e-5 + 2e-4 * std::fabs(fdg[c])) << "dgamma x2 " << c;
      EXPECT_NEAR(db[c], db0[c] + 2 * fdb[c], 4e-5 + 2e-4 * std::fabs(fdb[c])) << "dbeta x2 " << c;
    }
    // dx may alias dy.
    std::vector<float> inplace = w, dg3(cols, 0.f), db3(cols, 0.f);
    im.bwd(x.data(), g.data(), m.data(), s.data(), inplace.data(), inplace.data(), dg3.data(), db3.data(), rows, cols);
    expect_close(inplace, dx, 0.f, 0.f, "dx aliasing dy");
  }
}

TEST(LayerNorm, ParallelBackwardIsReproducible) {
  // Large enough for the threaded path with its per-thread partial sums, and wider than the
  // stack buffer for the partials.
  for (int64_t cols : {1031, 5000}) {
    const int64_t rows = 65;
    auto x = random_vec(rows * cols, 31), g = random_vec(cols, 32), dy = random_vec(rows * cols, 33);
    std::vector<float> m(rows), s(rows), y(rows * cols);
    k::layernorm_forward(x.data(), g.data(), g.data(), y.data(), m.data(), s.data(), rows, cols, 1e-5f);
    std::vector<float> dx1(rows * cols), dx2(rows * cols), dg1(cols, 1.f), db1(cols, 1.f), dg2(cols, 1.f), db2(cols, 1.f);
    k::layernorm_backward(x.data(), g.data(), m.data(), s.data(), dy.data(), dx1.data(), dg1.data(), db1.data(), rows, cols);
    k::layernorm_backward(x.data(), g.data(), m.data(), s.data(), dy.data(), dx2.data(), dg2.data(), db2.data(), rows, cols);
    expect_close(dx2, dx1, 0.f, 0.f, "dx");
    expect_close(dg2, dg1, 0.f, 0.f, "dgamma");
    expect_close(db2, db1, 0.f, 0.f, "dbeta");
    std::vector<float> dxr(rows * cols), dgr(cols, 1.f), dbr(cols, 1.f);
    k::ref::layernorm_backward(x.data(), g.data(), m.data(), s.data(), dy.data(), dxr.data(), dgr.data(), dbr.data(), rows, cols);
    expect_close(dx1, dxr, 1e-4f, 2e-5f, "dx vs ref");
    expect_close(dg1, dgr, 1e-5f, 5e-4f, "dgamma vs ref");
    expect_close(db1, dbr, 1e-5f, 5e-4f, "dbeta vs ref");
  }
}
