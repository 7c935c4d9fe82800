#include "gannet/kernels/quantize_rows.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "gannet/core/dispatch.h"
#include "gannet/core/error.h"

namespace gannet::kernels {

namespace ref {
void quantize_rows(const float* X, int64_t ldx, int64_t M, int64_t K, float static_scale, int8_t* q, int64_t ldq,
                   float* scales) {
  for (int64_t m = 0; m < M; ++m) {
    const float* x = X + m * ldx;
    float scale = static_scale, inv = 0.f;
    if (static_scale > 0.f) {
      inv = 1.f / static_scale;
    } else {
      float amax = 0.f;
      for (int64_t k = 0; k < K; ++k) amax = std::max(amax, std::fabs(x[k]));
      scale = amax / 127.f;
      inv = amax > 0.f ? 127.f / amax : 0.f;
    }
    scales[m] = scale;
    for (int64_t k = 0; k < K; ++k)
      q[m * ldq + k] = (int8_t)std::nearbyint(std::min(std::max(x[k] * inv, -127.f), 127.f));
  }
}
}  // namespace ref

void quantize_rows(const float* X, int64_t ldx, int64_t M, int64_t K, float static_scale, int8_t* q, int64_t ldq,
                   float* scales) {
  GANNET_CHECK(M >= 0 && K >= 0 && ldx >= K && ldq >= K, "quantize_rows: bad sizes M=", M, " K=", K, " ldx=", ldx,
               " ldq=", ldq);
  GANNET_CHECK(std::isfinite(static_scale), "quantize_rows: static scale ", static_scale, " is not finite");
  auto rows = [&](int64_t m0, int64_t m1) {
    auto body = [&](const float* x, int8_t* qq, float* s) {
      GANNET_DISPATCH(quantize_rows, x, ldx, m1 - m0, K, static_scale, qq, ldq, s);
    };
    body(X + m0 * ldx, q + m0 * ldq, scales + m0);
  };
  if (omp_in_parallel() || M < 2 || M * K < (int64_t(1) << 16)) return rows(0, M);
#pragma omp parallel
  {
    const int64_t nth = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t chunk = (M + nth - 1) / nth, b = std::min(M, t * chunk), e = std::min(M, b + chunk);
    if (b < e) rows(b, e);
  }
}

}  // namespace gannet::kernels
