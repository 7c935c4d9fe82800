#include "gannet/kernels/quantize_rows.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "gannet/core/dispatch.h"
#include "gannet/core/error.h"

namespace gannet::kernels {

namespace ref {
namespace {
float row_amax(const float* x, int64_t K) {
  float amax = 0.f;
  for (int64_t k = 0; k < K; ++k) amax = std::max(amax, std::fabs(x[k]));
  return amax;
}
void row_quantize(const float* x, int64_t K, float inv, int8_t* q) {
  for (int64_t k = 0; k < K; ++k) q[k] = (int8_t)std::nearbyint(std::min(std::max(x[k] * inv, -127.f), 127.f));
}
}  // namespace

void quantize_rows(const float* X, int64_t ldx, int64_t M, int64_t K, float static_scale, int8_t* q, int64_t ldq,
                   float* scales) {
  for (int64_t m = 0; m < M; ++m) {
    const float* x = X + m * ldx;
    const RowScale s = row_scale(static_scale > 0.f ? 0.f : row_amax(x, K), static_scale);
    scales[m] = s.scale;
    row_quantize(x, K, s.inv, q + m * ldq);
  }
}

void rows_abs_max(const float* X, int64_t ldx, int64_t M, int64_t K, float* amax) {
  for (int64_t m = 0; m < M; ++m) amax[m] = row_amax(X + m * ldx, K);
}

void quantize_rows_inv(const float* X, int64_t ldx, int64_t M, int64_t K, const float* inv, int8_t* q, int64_t ldq) {
  for (int64_t m = 0; m < M; ++m) row_quantize(X + m * ldx, K, inv[m], q + m * ldq);
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

void rows_abs_max(const float* X, int64_t ldx, int64_t M, int64_t K, float* amax) {
  GANNET_CHECK(M >= 0 && K >= 0 && ldx >= K, "rows_abs_max: bad sizes M=", M, " K=", K, " ldx=", ldx);
  GANNET_DISPATCH(rows_abs_max, X, ldx, M, K, amax);
}

void quantize_rows_inv(const float* X, int64_t ldx, int64_t M, int64_t K, const float* inv, int8_t* q, int64_t ldq) {
  GANNET_CHECK(M >= 0 && K >= 0 && ldx >= K && ldq >= K, "quantize_rows_inv: bad sizes M=", M, " K=", K,
               " ldx=", ldx, " ldq=", ldq);
  GANNET_DISPATCH(quantize_rows_inv, X, ldx, M, K, inv, q, ldq);
}

}  // namespace gannet::kernels
