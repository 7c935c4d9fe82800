// Vector AdamW step and sum of squares; compiled once per ISA (see core/simd.h).
#include <cmath>

#include "gannet/core/error.h"
#include "gannet/core/simd.h"
#include "gannet/kernels/adamw.h"

namespace gannet::kernels::GANNET_ISA {
using namespace gannet::simd;

namespace {
constexpr int64_t kGrain = 4096;     // elements per parallel chunk of the update
constexpr int64_t kSqBlock = 1024;   // elements summed in float vectors before going to double
constexpr int64_t kSqParts = 64;     // fixed partition, so the sum is thread-count independent
constexpr int64_t kSqPartMin = 16384;  // fewest elements per partition

struct AdamConsts {
  vf b1, omb1, b2, omb2, eps, decay, step_size, inv_sqrt_bc2, gs;
};

// As PyTorch's single-tensor AdamW: param *= 1 - lr*wd; m, v updated; then
// param -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps).
inline void adam_v(const AdamConsts& k, vf& p, vf g, vf& m, vf& v) {
  g = mul(g, k.gs);
  p = mul(p, k.decay);
  m = fmadd(k.b1, m, mul(k.omb1, g));
  v = fmadd(k.b2, v, mul(k.omb2, mul(g, g)));
  vf denom = fmadd(sqrt(v), k.inv_sqrt_bc2, k.eps);
  p = fnmadd(k.step_size, div(m, denom), p);
}

// Per lane, x*x is split exactly into p + e (FMA) and p is added with TwoSum, so each lane's float
// sum carries its own rounding error; every kSqBlock elements the lanes go to double.
inline double sum_squares_range(const float* x, int64_t i0, int64_t i1) {
  double total = 0.0;
  float lanes[2][W];
  for (int64_t b = i0; b < i1; b += kSqBlock) {
    const int64_t end = b + kSqBlock < i1 ? b + kSqBlock : i1;
    vf s = zero(), comp = zero();
    auto add_sq = [&](vf a) {
      // fmadd, not mul: the compiler may contract a plain vector product into later adds
      // (-ffp-contract=fast), which would make the error terms below count e twice.
      vf p = fmadd(a, a, zero());
      vf t = add(s, p), z = sub(t, s);
      comp = add(comp, add(sub(s, sub(t, z)), sub(p, z)));  // TwoSum's rounding error of s + p
      comp = sub(comp, fnmadd(a, a, p));                   // + (a*a - p), exact
      s = t;
    };
    int64_t i = b;
    for (; i + W <= end; i += W) add_sq(load(x + i));
    if (i < end) add_sq(load_partial(x + i, (int)(end - i)));
    store(lanes[0], s);
    store(lanes[1], comp);
    for (int l = 0; l < W; ++l) total += (double)lanes[0][l] + (double)lanes[1][l];
  }
  return total;
}
}  // namespace

void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int64_t step, float grad_scale) {
  check_adamw_step(step);  // out of line: no message template instantiated with this file's ISA
  const double bc1 = 1.0 - std::pow((double)beta1, (double)step);
  const double bc2 = 1.0 - std::pow((double)beta2, (double)step);
  const AdamConsts k{set1(beta1),
                     set1((float)(1.0 - beta1)),
                     set1(beta2),
                     set1((float)(1.0 - beta2)),
                     set1(eps),
                     set1((float)(1.0 - (double)lr * weight_decay)),
                     set1((float)(lr / bc1)),
                     set1((float)(1.0 / std::sqrt(bc2))),
                     set1(grad_scale)};
#pragma omp parallel for schedule(static) if (n > 4 * kGrain)
  for (int64_t c = 0; c < n; c += kGrain) {
    int64_t end = c + kGrain < n ? c + kGrain : n, i = c;
    for (; i + W <= end; i += W) {
      vf p = load(param + i), mi = load(m + i), vi = load(v + i);
      adam_v(k, p, load(grad + i), mi, vi);
      store(param + i, p);
      store(m + i, mi);
      store(v + i, vi);
    }
    if (i < end) {
      int r = (int)(end - i);
      vf p = load_partial(param + i, r), mi = load_partial(m + i, r), vi = load_partial(v + i, r);
      adam_v(k, p, load_partial(grad + i, r), mi, vi);
      store_partial(param + i, p, r);
      store_partial(m + i, mi, r);
      store_partial(v + i, vi, r);
    }
  }
}

double sum_squares(const float* x, int64_t n) {
  if (n <= 0) return 0.0;
  int64_t parts = (n + kSqPartMin - 1) / kSqPartMin;
  if (parts > kSqParts) parts = kSqParts;
  if (parts == 1) return sum_squares_range(x, 0, n);
  double part[kSqParts];
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < parts; ++p) part[p] = sum_squares_range(x, p * n / parts, (p + 1) * n / parts);
  double total = 0.0;
  for (int64_t p = 0; p < parts; ++p) total += part[p];
  return total;
}

}  // namespace gannet::kernels::GANNET_ISA
