#include "gannet/kernels/bias.h"

#include <omp.h>

#include "kernel_test_util.h"

using namespace gannet;
using namespace gannet::testing;
namespace k = gannet::kernels;

namespace {

struct Impl {
  const char* name;
  decltype(&k::ref::add_bias) add_bias;
  decltype(&k::ref::bias_grad) bias_grad;
  decltype(&k::ref::add) add;
  decltype(&k::ref::add_inplace) add_inplace;
  decltype(&k::ref::scale_inplace) scale_inplace;
};

std::vector<Impl> vector_impls() {
  std::vector<Impl> out;
  for (Isa isa : vector_isas()) {
    if (isa == Isa::avx2)
      out.push_back({"avx2", k::avx2::add_bias, k::avx2::bias_grad, k::avx2::add, k::avx2::add_inplace,
                     k::avx2::scale_inplace});
    if (isa == Isa::avx512)
      out.push_back({"avx512", k::avx512::add_bias, k::avx512::bias_grad, k::avx512::add, k::avx512::add_inplace,
                     k::avx512::scale_inplace});
  }
  return out;
}

std::vector<Impl> all_impls() {
  std::vector<Impl> out = {
      {"ref", k::ref::add_bias, k::ref::bias_grad, k::ref::add, k::ref::add_inplace, k::ref::scale_inplace},
      {"dispatch", k::add_bias, k::bias_grad, k::add, k::add_inplace, k::scale_inplace}};
  for (const Impl& i : vector_impls()) out.push_back(i);
  return out;
}

const std::vector<int64_t> kShapes = {1, 3, 7, 16, 17, 33, 384, 1031};

// Inputs for the shape sweeps: slices of one random pool, copied into reused buffers (drawing
// fresh normals and touching fresh pages for every shape would dominate the run time).
struct Pool {
  std::vector<float> v = random_vec(1031 * 1031 + 4096, 3);
  void fill(std::vector<float>& out, int64_t n, int64_t seed, float scale = 1.f) const {
    const int64_t off = (seed * 7919) % 4096;
    out.reserve(1031 * 1031);  // grow once, not once per new largest shape
    out.resize(n);
    for (int64_t i = 0; i < n; ++i) out[i] = scale * v[off + i];
  }
};

}  // namespace

TEST(Bias, AddBiasIsExact) {
  const Pool pool;
  std::vector<float> y0, bias, want, y;
  for (int64_t rows : kShapes) {
    for (int64_t cols : kShapes) {
      pool.fill(y0, rows * cols, rows * 131 + cols);
      pool.fill(bias, cols, cols + 3);
      want.resize(rows * cols);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) want[r * cols + c] = y0[r * cols + c] + bias[c];
      for (const Impl& im : all_impls()) {
        SCOPED_TRACE(::testing::Message() << im.name << " rows=" << rows << " cols=" << cols);
        y = y0;
        im.add_bias(y.data(), bias.data(), rows, cols);
        expect_close(y, want, 0.f, 0.f, "y");
      }
    }
  }
}

TEST(Bias, GradMatchesDoubleColumnSumsAndAccumulates) {
  const Pool pool;
  std::vector<float> dy, db0, want, db;
  for (int64_t rows : kShapes) {
    for (int64_t cols : kShapes) {
      pool.fill(dy, rows * cols, rows * 17 + cols, 2.f);
      pool.fill(db0, cols, cols + 9);  // non-zero start: the kernel must add to it
      want.resize(cols);
      for (int64_t c = 0; c < cols; ++c) {
        double s = db0[c];
        for (int64_t r = 0; r < rows; ++r) s += dy[r * cols + c];
        want[c] = (float)s;
      }
      for (const Impl& im : all_impls()) {
        SCOPED_TRACE(::testing::Message() << im.name << " rows=" << rows << " cols=" << cols);
        db = db0;
        im.bias_grad(dy.data(), db.data(), rows, cols);
        // Float sums of `rows` terms of size ~2.
        expect_close(db, want, 1e-6f, 1e-6f + 4e-7f * (float)rows, "dbias");
      }
    }
  }
}

TEST(Bias, VectorMatchesScalarReference) {
  GANNET_SKIP_WITHOUT_VECTOR_ISA();
  const Pool pool;
  std::vector<float> dy, db0, want, got, y0, yw, yg;
  for (int64_t rows : kShapes) {
    for (int64_t cols : kShapes) {
      pool.fill(dy, rows * cols, rows * 5 + cols);
      pool.fill(db0, cols, cols + 1);
      pool.fill(y0, rows * cols, rows + cols * 3);
      want = db0;
      k::ref::bias_grad(dy.data(), want.data(), rows, cols);
      yw = y0;
      k::ref::add_bias(yw.data(), db0.data(), rows, cols);
      for (const Impl& im : vector_impls()) {
        SCOPED_TRACE(::testing::Message() << im.name << " rows=" << rows << " cols=" << cols);
        got = db0;
        im.bias_grad(dy.data(), got.data(), rows, cols);
        expect_close(got, want, 1e-6f, 1e-6f + 2e-7f * (float)rows, "dbias");
        yg = y0;
        im.add_bias(yg.data(), db0.data(), rows, cols);
        expect_close(yg, yw, 0.f, 0.f, "add_bias");
      }
    }
  }
}

TEST(Bias, GradDoesNotDependOnThreadCount) {
  const int64_t rows = 300, cols = 1031;
  auto dy = random_vec(rows * cols, 77);
  std::vector<float> one(cols, 0.5f), many(cols, 0.5f);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  k::bias_grad(dy.data(), one.data(), rows, cols);
  omp_set_num_threads(3);
  k::bias_grad(dy.data(), many.data(), rows, cols);
  omp_set_num_threads(saved);
  expect_close(many, one, 0.f, 0.f, "dbias");
}

TEST(Bias, ElementwiseOpsAreExact) {
  for (const Impl& im : all_impls()) {
    for (int64_t n : awkward_sizes()) {
      SCOPED_TRACE(::testing::Message() << im.name << " n=" << n);
      const auto a = random_vec(n, n), b = random_vec(n, n + 1);
      std::vector<float> sum(n), scaled(n);
      for (int64_t i = 0; i < n; ++i) sum[i] = a[i] + b[i], scaled[i] = a[i] * -0.37f;

      std::vector<float> y(n, 9.f);
      im.add(a.data(), b.data(), y.data(), n);
      expect_close(y, sum, 0.f, 0.f, "add");
      auto ya = a;  // y aliases a
      im.add(ya.data(), b.data(), ya.data(), n);
      expect_close(ya, sum, 0.f, 0.f, "add, y == a");
      auto yb = b;  // y aliases b
      im.add(a.data(), yb.data(), yb.data(), n);
      expect_close(yb, sum, 0.f, 0.f, "add, y == b");

      auto acc = a;
      im.add_inplace(acc.data(), b.data(), n);
      expect_close(acc, sum, 0.f, 0.f, "add_inplace");

      auto sc = a;
      im.scale_inplace(sc.data(), -0.37f, n);
      expect_close(sc, scaled, 0.f, 0.f, "scale_inplace");
    }
  }
}
