#include "gannet/kernels/softmax.h"

#include "kernel_test_util.h"

using namespace gannet;
using namespace gannet::testing;
namespace k = gannet::kernels;

namespace {

struct Impl {
  const char* name;
  decltype(&k::ref::softmax_forward) fwd;
  decltype(&k::ref::softmax_backward) bwd;
};

std::vector<Impl> vector_impls() {
  std::vector<Impl> out;
  for (Isa isa : vector_isas()) {
    if (isa == Isa::avx2) out.push_back({"avx2", k::avx2::softmax_forward, k::avx2::softmax_backward});
    if (isa == Isa::avx512) out.push_back({"avx512", k::avx512::softmax_forward, k::avx512::softmax_backward});
  }
  return out;
}

std::vector<Impl> all_impls() {
  std::vector<Impl> out = {{"ref", k::ref::softmax_forward, k::ref::softmax_backward},
                           {"dispatch", k::softmax_forward, k::softmax_backward}};
  for (const Impl& i : vector_impls()) out.push_back(i);
  return out;
}

const std::vector<int64_t> kShapes = {1, 3, 7, 16, 17, 33, 384, 1031};

// Independent double-precision softmax (log-sum-exp form).
std::vector<double> softmax_double(const std::vector<double>& x, int64_t rows, int64_t cols) {
  std::vector<double> y(rows * cols);
  for (int64_t r = 0; r < rows; ++r) {
    const double* xr = x.data() + r * cols;
    double m = xr[0];
    for (int64_t c = 1; c < cols; ++c) m = std::max(m, xr[c]);
    double s = 0;
    for (int64_t c = 0; c < cols; ++c) s += std::exp(xr[c] - m);
    double lse = m + std::log(s);
    for (int64_t c = 0; c < cols; ++c) y[r * cols + c] = std::exp(xr[c] - lse);
  }
  return y;
}

std::vector<float> to_float(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

}  // namespace

TEST(Softmax, ForwardMatchesDoubleDefinition) {
  for (const Impl& im : all_impls()) {
    for (float scale : {1.f, 10.f}) {
      for (float shift : {0.f, 1000.f, -1000.f}) {  // large offsets: needs the max subtraction
        const int64_t rows = 9, cols = 37;
        auto x = random_vec(rows * cols, 3, scale);
        for (auto& v : x) v += shift;
        std::vector<float> y(rows * cols);
        im.fwd(x.data(), y.data(), rows, cols);
        auto want = softmax_double(std::vector<double>(x.begin(), x.end()), rows, cols);
        expect_close(y, to_float(want), 1e-5f, 1e-7f, im.name);
        for (int64_t r = 0; r < rows; ++r) {
          double s = 0;
          for (int64_t c = 0; c < cols; ++c) s += y[r * cols + c];
          EXPECT_NEAR(s, 1.0, 1e-5) << im.name << " row " << r;
        }
      }
    }
  }
}

TEST(Softmax, VectorMatchesScalarReference) {
  GANNET_SKIP_WITHOUT_VECTOR_ISA();
  // Inputs are slices of one random pool and buffers are reused across shapes (see LayerNorm).
  const auto pool = random_vec(1031 * 1031 + 4096, 2);
  auto fill = [&](std::vector<float>& v, int64_t n, int64_t seed, float scale) {
    const int64_t off = (seed * 7919) % 4096;
    v.reserve(1031 * 1031);  // grow once, not once per new largest shape
    v.resize(n);
    for (int64_t i = 0; i < n; ++i) v[i] = scale * pool[off + i];
  };
  std::vector<float> x, dy, yw, yg, dxw, dxg;
  for (int64_t rows : kShapes) {
    for (int64_t cols : kShapes) {
      const int64_t n = rows * cols;
      fill(x, n, rows * 13 + cols, 4.f);
      fill(dy, n, rows * 31 + cols + 5, 1.f);
      yw.resize(n), dxw.resize(n);
      k::ref::softmax_forward(x.data(), yw.data(), rows, cols);
      k::ref::softmax_backward(yw.data(), dy.data(), dxw.data(), rows, cols);
      for (const Impl& im : vector_impls()) {
        SCOPED_TRACE(::testing::Message() << im.name << " rows=" << rows << " cols=" << cols);
        yg.assign(n, 7.f), dxg.assign(n, 7.f);
        im.fwd(x.data(), yg.data(), rows, cols);
        expect_close(yg, yw, 1e-5f, 1e-8f, "y");
        im.bwd(yw.data(), dy.data(), dxg.data(), rows, cols);
        expect_close(dxg, dxw, 1e-4f, 1e-6f, "dx");
      }
    }
  }
}

TEST(Softmax, MaskedEntriesGiveExactZeros) {
  const int64_t rows = 4, cols = 21;
  for (const Impl& im : all_impls()) {
    SCOPED_TRACE(im.name);
    auto x = random_vec(rows * cols, 8, 2.f);
    for (int64_t c = 0; c < cols; ++c) x[0 * cols + c] = -INFINITY;  // row 0 fully masked
    for (int64_t c = 0; c < cols; c += 3) x[1 * cols + c] = -INFINITY;
    for (int64_t c = 10; c < cols; ++c) x[2 * cols + c] = -INFINITY;  // causal-style: masked tail
    x[3 * cols + 5] = 0.f, x[3 * cols + 6] = -200.f;                 // underflows: must be exactly 0
    std::vector<float> y(rows * cols, 7.f);
    im.fwd(x.data(), y.data(), rows, cols);
    for (int64_t c = 0; c < cols; ++c) EXPECT_EQ(y[c], 0.f) << "fully masked row, col " << c;
    for (int64_t r = 1; r < 3; ++r) {
      double s = 0;
      for (int64_t c = 0; c < cols; ++c) {
        float v = y[r * cols + c];
        if (std::isinf(x[r * cols + c])) EXPECT_EQ(v, 0.f) << r << "," << c;
        else EXPECT_GT(v, 0.f) << r << "," << c;
        s += v;
      }
      EXPECT_NEAR(s, 1.0, 1e-5) << "row " << r;
    }
    EXPECT_EQ(y[3 * cols + 6], 0.f);
    for (float v : y) EXPECT_FALSE(std::isnan(v));
  }
}

TEST(Softmax, BackwardMatchesFiniteDifferences) {
  // L = sum_rc w[r,c] softmax(x)[r,c]; central differences on the double forward.
  const int64_t rows = 3, cols = 19;
  const double h = 1e-5;
  const auto x = random_vec(rows * cols, 41, 2.f);
  const auto w = random_vec(rows * cols, 42);
  std::vector<double> xd(x.begin(), x.end()), fdx(rows * cols);
  auto loss = [&]() {
    auto y = softmax_double(xd, rows, cols);
    double l = 0;
    for (int64_t i = 0; i < rows * cols; ++i) l += w[i] * y[i];
    return l;
  };
  for (int64_t i = 0; i < rows * cols; ++i) {
    double v0 = xd[i];
    xd[i] = v0 + h;
    double lp = loss();
    xd[i] = v0 - h;
    double lm = loss();
    xd[i] = v0;
    fdx[i] = (lp - lm) / (2 * h);
  }
  for (const Impl& im : all_impls()) {
    SCOPED_TRACE(im.name);
    std::vector<float> y(rows * cols), dx(rows * cols, 1e3f);
    im.fwd(x.data(), y.data(), rows, cols);
    im.bwd(y.data(), w.data(), dx.data(), rows, cols);
    for (int64_t i = 0; i < rows * cols; ++i) EXPECT_NEAR(dx[i], fdx[i], 1e-6 + 1e-4 * std::fabs(fdx[i])) << i;
    std::vector<float> inplace = w;  // dx may alias dy
    im.bwd(y.data(), inplace.data(), inplace.data(), rows, cols);
    expect_close(inplace, dx, 0.f, 0.f, "dx aliasing dy");
  }
}

TEST(Softmax, ForwardInPlace) {
  const int64_t rows = 70, cols = 1031;  // large enough for the threaded path
  for (const Impl& im : all_impls()) {
    auto x = random_vec(rows * cols, 51, 3.f);
    std::vector<float> want(rows * cols);
    im.fwd(x.data(), want.data(), rows, cols);
    im.fwd(x.data(), x.data(), rows, cols);
    expect_close(x, want, 0.f, 0.f, im.name);
  }
}
