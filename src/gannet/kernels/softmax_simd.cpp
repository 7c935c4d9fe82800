// Vector row-wise softmax; compiled once per ISA (see core/simd.h).
#include <cmath>

#include "gannet/core/simd.h"
#include "gannet/kernels/softmax.h"

namespace gannet::kernels::GANNET_ISA {
using namespace gannet::simd;

namespace {
constexpr int64_t kParallelMin = 1 << 15;  // elements below which a parallel region costs more than it saves

// exp(d) for d <= 0, flushed to exactly 0 where d < -87 (simd::exp clamps there instead, and its
// ~1e-38 results would become denormals once divided by the row sum). Masked (-inf) entries and
// padding lanes loaded as -inf therefore contribute exactly 0.
inline vf exp_flush(vf d) {
  vf e = gannet::simd::exp(d);
#if defined(__AVX512F__)
  return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(d, set1(-87.f), _CMP_GE_OQ), e);
#else
  return _mm256_and_ps(e, _mm256_cmp_ps(d, set1(-87.f), _CMP_GE_OQ));
#endif
}

inline void forward_row(const float* x, float* y, int64_t cols) {
  vf vmax = set1(-INFINITY);
  int64_t c = 0;
  for (; c + W <= cols; c += W) vmax = max(vmax, load(x + c));
  if (c < cols) vmax = max(vmax, load_partial(x + c, (int)(cols - c), -INFINITY));
  const float m = reduce_max(vmax);
  if (m == -INFINITY) {  // fully masked row: zeros, not NaN
    for (c = 0; c + W <= cols; c += W) store(y + c, zero());
    if (c < cols) store_partial(y + c, zero(), (int)(cols - c));
    return;
  }
  const vf vm = set1(m);
  vf sum = zero();
  for (c = 0; c + W <= cols; c += W) {
    vf e = exp_flush(sub(load(x + c), vm));
    store(y + c, e);
    sum = add(sum, e);
  }
  if (c < cols) {
    int n = (int)(cols - c);
    vf e = exp_flush(sub(load_partial(x + c, n, -INFINITY), vm));
    store_partial(y + c, e, n);
    sum = add(sum, e);
  }
  const vf inv = set1(1.f / reduce_add(sum));
  for (c = 0; c + W <= cols; c += W) store(y + c, mul(load(y + c), inv));
  if (c < cols) store_partial(y + c, mul(load_partial(y + c, (int)(cols - c)), inv), (int)(cols - c));
}

inline void backward_row(const float* y, const float* dy, float* dx, int64_t cols) {
  vf acc = zero();
  int64_t c = 0;
  for (; c + W <= cols; c += W) acc = fmadd(load(dy + c), load(y + c), acc);
  if (c < cols) acc = fmadd(load_partial(dy + c, (int)(cols - c)), load_partial(y + c, (int)(cols - c)), acc);
  const vf dot = set1(reduce_add(acc));
  for (c = 0; c + W <= cols; c += W) store(dx + c, mul(load(y + c), sub(load(dy + c), dot)));
  if (c < cols) {
    int n = (int)(cols - c);
    store_partial(dx + c, mul(load_partial(y + c, n), sub(load_partial(dy + c, n), dot)), n);
  }
}
}  // namespace

void softmax_forward(const float* x, float* y, int64_t rows, int64_t cols) {
  if (cols <= 0) return;
#pragma omp parallel for schedule(static) if (rows > 1 && rows * cols > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) forward_row(x + r * cols, y + r * cols, cols);
}

void softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t cols) {
  if (cols <= 0) return;
#pragma omp parallel for schedule(static) if (rows > 1 && rows * cols > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) backward_row(y + r * cols, dy + r * cols, dx + r * cols, cols);
}

}  // namespace gannet::kernels::GANNET_ISA
