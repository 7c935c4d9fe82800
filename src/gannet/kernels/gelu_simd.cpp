// Vector GELU; compiled once per ISA (see core/simd.h).
#include "gannet/core/simd.h"
#include "gannet/kernels/gelu.h"

namespace gannet::kernels::GANNET_ISA {
using namespace gannet::simd;

namespace {
constexpr int64_t kGrain = 4096;  // elements per parallel chunk

// 0.5 x (1 + tanh(u)) = x * sigmoid(2u), which keeps its accuracy for large negative x.
inline vf sigmoid2u(vf x, vf x2) {
  vf u2 = mul(set1(2.f * 0.7978845608028654f), fmadd(mul(set1(0.044715f), x2), x, x));
  return div(set1(1.f), add(set1(1.f), exp(sub(zero(), u2))));
}

inline vf gelu_v(vf x) { return mul(x, sigmoid2u(x, mul(x, x))); }

// d/dx [x s(2u)] = s + x * 2 s (1 - s) u'
inline vf gelu_grad_v(vf x) {
  vf x2 = mul(x, x);
  vf s = sigmoid2u(x, x2);
  vf du = mul(set1(2.f * 0.7978845608028654f), fmadd(set1(3.f * 0.044715f), x2, set1(1.f)));
  return fmadd(mul(x, mul(s, sub(set1(1.f), s))), du, s);
}
}  // namespace

void gelu_forward(const float* x, float* y, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 4 * kGrain)
  for (int64_t c = 0; c < n; c += kGrain) {
    int64_t end = c + kGrain < n ? c + kGrain : n, i = c;
    for (; i + W <= end; i += W) store(y + i, gelu_v(load(x + i)));
    if (i < end) store_partial(y + i, gelu_v(load_partial(x + i, (int)(end - i))), (int)(end - i));
  }
}

void gelu_backward(const float* x, const float* dy, float* dx, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 4 * kGrain)
  for (int64_t c = 0; c < n; c += kGrain) {
    int64_t end = c + kGrain < n ? c + kGrain : n, i = c;
    for (; i + W <= end; i += W) store(dx + i, mul(load(dy + i), gelu_grad_v(load(x + i))));
    if (i < end) {
      int r = (int)(end - i);
      store_partial(dx + i, mul(load_partial(dy + i, r), gelu_grad_v(load_partial(x + i, r))), r);
    }
  }
}

}  // namespace gannet::kernels::GANNET_ISA
