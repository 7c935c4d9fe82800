// Vector body of the bandwidth probe; compiled once per ISA (see core/simd.h).
#include "gannet/core/simd.h"
#include "gannet/kernels/memory_bandwidth.h"

namespace gannet::kernels::GANNET_ISA {
using namespace gannet::simd;

float stream_sum(const float* x, int64_t n) {
  vf a0 = zero(), a1 = zero(), a2 = zero(), a3 = zero();
  int64_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    a0 = add(a0, load(x + i));
    a1 = add(a1, load(x + i + W));
    a2 = add(a2, load(x + i + 2 * W));
    a3 = add(a3, load(x + i + 3 * W));
  }
  float s = reduce_add(add(add(a0, a1), add(a2, a3)));
  for (; i < n; ++i) s += x[i];
  return s;
}

}  // namespace gannet::kernels::GANNET_ISA
