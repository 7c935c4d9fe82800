// Vector layer normalization; compiled once per ISA (see core/simd.h).
#include <omp.h>

#include <cmath>
#include <vector>

#include "gannet/core/isa_scratch.h"
#include "gannet/core/simd.h"
#include "gannet/kernels/layernorm.h"

namespace gannet::kernels::GANNET_ISA {
using namespace gannet::simd;

namespace {
constexpr int64_t kParallelMin = 1 << 15;  // elements below which a parallel region costs more than it saves
constexpr int64_t kStackCols = 4096;       // backward: per-thread dgamma/dbeta partials live on the stack up to this width

// Row statistics: two passes (mean, then squared deviations) for accuracy.
inline void row_stats(const float* x, int64_t cols, float eps, float& m, float& s) {
  vf acc = zero();
  int64_t c = 0;
  for (; c + W <= cols; c += W) acc = add(acc, load(x + c));
  if (c < cols) acc = add(acc, load_partial(x + c, (int)(cols - c)));
  m = reduce_add(acc) / (float)cols;
  const vf vm = set1(m);
  acc = zero();
  for (c = 0; c + W <= cols; c += W) {
    vf d = sub(load(x + c), vm);
    acc = fmadd(d, d, acc);
  }
  if (c < cols) {
    vf d = sub(load_partial(x + c, (int)(cols - c), m), vm);  // padding lanes hold the mean: zero deviation
    acc = fmadd(d, d, acc);
  }
  s = 1.f / std::sqrt(reduce_add(acc) / (float)cols + eps);
}

inline void forward_row(const float* x, const float* gamma, const float* beta, float* y, int64_t cols,
                        float m, float s) {
  const vf vm = set1(m), vs = set1(s);
  int64_t c = 0;
  for (; c + W <= cols; c += W) {
    vf xh = mul(sub(load(x + c), vm), vs);
    store(y + c, fmadd(xh, load(gamma + c), load(beta + c)));
  }
  if (c < cols) {
    int n = (int)(cols - c);
    vf xh = mul(sub(load_partial(x + c, n), vm), vs);
    store_partial(y + c, fmadd(xh, load_partial(gamma + c, n), load_partial(beta + c, n)), n);
  }
}

// One row of the backward pass: accumulates dy*xhat into dg and dy into db, writes dx.
inline void backward_row(const float* x, const float* gamma, const float* dy, float* dx, float* dg,
                         float* db, int64_t cols, float m, float s) {
  const vf vm = set1(m), vs = set1(s);
  vf sg = zero(), sgx = zero();
  int64_t c = 0;
  for (; c + W <= cols; c += W) {
    vf d = load(dy + c), xh = mul(sub(load(x + c), vm), vs), g = mul(d, load(gamma + c));
    sg = add(sg, g);
    sgx = fmadd(g, xh, sgx);
    store(dg + c, fmadd(d, xh, load(dg + c)));
    store(db + c, add(load(db + c), d));
  }
  if (c < cols) {  // padding lanes have dy = 0, so they add nothing
    int n = (int)(cols - c);
    vf d = load_partial(dy + c, n), xh = mul(sub(load_partial(x + c, n), vm), vs);
    vf g = mul(d, load_partial(gamma + c, n));
    sg = add(sg, g);
    sgx = fmadd(g, xh, sgx);
    store_partial(dg + c, fmadd(d, xh, load_partial(dg + c, n)), n);
    store_partial(db + c, add(load_partial(db + c, n), d), n);
  }
  const float inv = 1.f / (float)cols;
  const vf mg = set1(reduce_add(sg) * inv), mgx = set1(reduce_add(sgx) * inv);
  // dx = s * (g - mean(g) - xhat * mean(g xhat))
  for (c = 0; c + W <= cols; c += W) {
    vf xh = mul(sub(load(x + c), vm), vs), g = mul(load(dy + c), load(gamma + c));
    store(dx + c, mul(vs, fnmadd(xh, mgx, sub(g, mg))));
  }
  if (c < cols) {
    int n = (int)(cols - c);
    vf xh = mul(sub(load_partial(x + c, n), vm), vs), g = mul(load_partial(dy + c, n), load_partial(gamma + c, n));
    store_partial(dx + c, mul(vs, fnmadd(xh, mgx, sub(g, mg))), n);
  }
}

inline void add_to(float* dst, const float* src, int64_t n) {
  int64_t i = 0;
  for (; i + W <= n; i += W) store(dst + i, add(load(dst + i), load(src + i)));
  if (i < n) store_partial(dst + i, add(load_partial(dst + i, (int)(n - i)), load_partial(src + i, (int)(n - i))), (int)(n - i));
}
}  // namespace

void layernorm_forward(const float* x, const float* gamma, const float* beta, float* y, float* mean,
                       float* rstd, int64_t rows, int64_t cols, float eps) {
  if (rows <= 0 || cols <= 0) return;
#pragma omp parallel for schedule(static) if (rows > 1 && rows * cols > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    float m, s;
    row_stats(x + r * cols, cols, eps, m, s);
    forward_row(x + r * cols, gamma, beta, y + r * cols, cols, m, s);
    if (mean) mean[r] = m;
    if (rstd) rstd[r] = s;
  }
}

void layernorm_backward(const float* x, const float* gamma, const float* mean, const float* rstd,
                        const float* dy, float* dx, float* dgamma, float* dbeta, int64_t rows,
                        int64_t cols) {
  if (rows <= 0 || cols <= 0) return;
#pragma omp parallel if (rows > 1 && rows * cols > kParallelMin)
  {
    // Per-thread partial sums of dgamma (first cols floats) and dbeta (next cols floats).
    alignas(64) float stack_part[2 * kStackCols];
    thread_local IsaScratch<float> heap_part;  // only for wide rows; grows once, then is reused
    float* part = cols > kStackCols ? heap_part.reserve(2 * cols) : stack_part;
    float *dg = part, *db = part + cols;
    for (int64_t c = 0; c < 2 * cols; ++c) part[c] = 0.f;

#pragma omp for schedule(static) nowait
    for (int64_t r = 0; r < rows; ++r)
      backward_row(x + r * cols, gamma, dy + r * cols, dx + r * cols, dg, db, cols, mean[r], rstd[r]);

    // Reduce the partials in thread order (one iteration per thread), so results do not depend
    // on which thread finishes first.
    const int nt = omp_get_num_threads();
#pragma omp for ordered schedule(static, 1)
    for (int t = 0; t < nt; ++t) {
#pragma omp ordered
      {
        add_to(dgamma, dg, cols);
        add_to(dbeta, db, cols);
      }
    }
  }
}

}  // namespace gannet::kernels::GANNET_ISA
