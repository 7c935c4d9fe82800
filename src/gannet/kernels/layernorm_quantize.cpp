#include "gannet/kernels/layernorm_quantize.h"

#include <omp.h>

#include <cmath>
#include <vector>

#include "gannet/core/error.h"
#include "gannet/core/parallel_errors.h"

#include "gannet/kernels/layernorm.h"
#include "gannet/kernels/quantize_rows.h"
#include "gannet/kernels/quantize_rows_int4.h"

namespace gannet::kernels {

namespace {
// Each row normalized into a row buffer (in L1), then quantize(row, m) from it; rows on the OpenMP
// threads when there are several.
template <class Quantize>
void normalized_rows(const float* x, const float* gamma, const float* beta, int64_t M, int64_t C, float eps,
                     const Quantize& quantize) {
  ParallelErrors errors;
#pragma omp parallel if (M > 1 && M * C > (1 << 14) && !omp_in_parallel())
  {
    thread_local std::vector<float> row;
    errors.run([&] {
      if ((int64_t)row.size() < C) row.resize(C);
    });
#pragma omp for schedule(static)
    for (int64_t m = 0; m < M; ++m) {
      errors.run([&] {
        layernorm_forward(x + m * C, gamma, beta, row.data(), nullptr, nullptr, 1, C, eps);
        quantize(row.data(), m);
      });
    }
  }
  errors.rethrow();
}
}  // namespace

void layernorm_quantize_rows_int4(const float* x, const float* gamma, const float* beta, int64_t M, int64_t C,
                                  float eps, int64_t Kp, bool asymmetric, float static_scale, uint8_t* q, int64_t ldq,
                                  float* scales, uint8_t* zeros) {
  // Checked here, before the threads start (quantize_rows_int4 checks each row again).
  GANNET_CHECK(M >= 0 && C >= 0 && Kp >= C && Kp % 2 == 0 && 2 * ldq >= Kp,
               "layernorm_quantize_rows_int4: bad sizes M=", M, " C=", C, " Kp=", Kp, " ldq=", ldq);
  GANNET_CHECK(std::isfinite(static_scale) && static_scale >= 0.f && !(asymmetric && static_scale > 0.f) &&
                   (!asymmetric || zeros),
               "layernorm_quantize_rows_int4: bad quantization (static scale ", static_scale,
               asymmetric ? ", asymmetric)" : ")");
  normalized_rows(x, gamma, beta, M, C, eps, [&](const float* row, int64_t m) {
    quantize_rows_int4(row, C, 1, C, Kp, asymmetric, static_scale, q + m * ldq, ldq, scales + m,
                       zeros ? zeros + m : nullptr);
  });
}

void layernorm_quantize_rows(const float* x, const float* gamma, const float* beta, int64_t M, int64_t C, float eps,
                             float static_scale, int8_t* q, int64_t ldq, float* scales) {
  // Checked here, before the threads start: quantize_rows' own checks would throw inside the region.
  GANNET_CHECK(M >= 0 && C >= 0 && ldq >= C, "layernorm_quantize_rows: bad sizes M=", M, " C=", C, " ldq=", ldq);
  GANNET_CHECK(std::isfinite(static_scale), "layernorm_quantize_rows: static scale ", static_scale, " is not finite");
  normalized_rows(x, gamma, beta, M, C, eps, [&](const float* row, int64_t m) {
    quantize_rows(row, C, 1, C, static_scale, q + m * ldq, ldq, scales + m);
  });
}

}  // namespace gannet::kernels
