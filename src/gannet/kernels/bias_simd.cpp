// Vector bias add, bias gradient and elementwise helpers; compiled once per ISA (see core/simd.h).
#include <omp.h>

#include "gannet/core/simd.h"
#include "gannet/kernels/bias.h"

namespace gannet::kernels::GANNET_ISA {
// The kernels here are named add etc. themselves, so the vector helpers are always qualified.
namespace s = gannet::simd;
using s::vf;
using s::W;

namespace {
constexpr int64_t kGrain = 4096;           // elementwise: elements per parallel chunk
constexpr int64_t kParallelMin = 1 << 15;  // elements below which a parallel region costs more than it saves
constexpr int64_t kMaxBlock = 1024;        // bias_grad: widest column block (its sums live on the stack)

// Calls f(begin, end) on consecutive chunks of [0, n), in parallel when n is large.
template <class F>
inline void chunked(int64_t n, F&& f) {
#pragma omp parallel for schedule(static) if (n > 4 * kGrain)
  for (int64_t c = 0; c < n; c += kGrain) f(c, c + kGrain < n ? c + kGrain : n);
}
}  // namespace

void add_bias(float* y, const float* bias, int64_t rows, int64_t cols) {
  if (cols <= 0) return;
#pragma omp parallel for schedule(static) if (rows > 1 && rows * cols > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    float* yr = y + r * cols;
    int64_t c = 0;
    for (; c + W <= cols; c += W) s::store(yr + c, s::add(s::load(yr + c), s::load(bias + c)));
    if (c < cols) {
      int n = (int)(cols - c);
      s::store_partial(yr + c, s::add(s::load_partial(yr + c, n), s::load_partial(bias + c, n)), n);
    }
  }
}

void bias_grad(const float* dy, float* dbias, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return;
  // Split the columns into about one block per thread, each summed over all rows in row order: no
  // cross-thread reduction, and the same result for any thread count.
  const bool par = rows * cols > kParallelMin;
  const int64_t nt = par ? omp_get_max_threads() : 1;
  int64_t width = ((cols + nt - 1) / nt + W - 1) / W * W;
  if (width > kMaxBlock) width = kMaxBlock;
  const int64_t nblocks = (cols + width - 1) / width;
#pragma omp parallel for schedule(static) if (par && nblocks > 1)
  for (int64_t b = 0; b < nblocks; ++b) {
    const int64_t c0 = b * width, n = (c0 + width < cols ? c0 + width : cols) - c0;
    alignas(64) float acc[kMaxBlock];
    for (int64_t c = 0; c < n; ++c) acc[c] = 0.f;
    for (int64_t r = 0; r < rows; ++r) {
      const float* d = dy + r * cols + c0;
      int64_t c = 0;
      for (; c + W <= n; c += W) s::store(acc + c, s::add(s::load(acc + c), s::load(d + c)));
      if (c < n) s::store_partial(acc + c, s::add(s::load_partial(acc + c, (int)(n - c)), s::load_partial(d + c, (int)(n - c))), (int)(n - c));
    }
    float* out = dbias + c0;
    int64_t c = 0;
    for (; c + W <= n; c += W) s::store(out + c, s::add(s::load(out + c), s::load(acc + c)));
    if (c < n) s::store_partial(out + c, s::add(s::load_partial(out + c, (int)(n - c)), s::load_partial(acc + c, (int)(n - c))), (int)(n - c));
  }
}

void add(const float* a, const float* b, float* y, int64_t n) {
  chunked(n, [=](int64_t i, int64_t end) {
    for (; i + W <= end; i += W) s::store(y + i, s::add(s::load(a + i), s::load(b + i)));
    if (i < end) {
      int r = (int)(end - i);
      s::store_partial(y + i, s::add(s::load_partial(a + i, r), s::load_partial(b + i, r)), r);
    }
  });
}

void add_inplace(float* y, const float* x, int64_t n) { add(y, x, y, n); }

void scale_inplace(float* y, float sc, int64_t n) {
  const vf v = s::set1(sc);
  chunked(n, [=](int64_t i, int64_t end) {
    for (; i + W <= end; i += W) s::store(y + i, s::mul(s::load(y + i), v));
    if (i < end) {
      int r = (int)(end - i);
      s::store_partial(y + i, s::mul(s::load_partial(y + i, r), v), r);
    }
  });
}

}  // namespace gannet::kernels::GANNET_ISA
