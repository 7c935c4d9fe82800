#include "gannet/kernels/layernorm_quantize.h"

#include <omp.h>

#include <cmath>
#include <vector>

#include "gannet/core/error.h"
#include "gannet/core/parallel_errors.h"

#include "gannet/kernels/layernorm.h"
#include "gannet/kernels/quantize_rows.h"

namespace gannet::kernels {

void layernorm_quantize_rows(const float* x, const float* gamma, const float* beta, int64_t M, int64_t C, float eps,
                             float static_scale, int8_t* q, int64_t ldq, float* scales) {
  // Checked here, before the threads start: quantize_rows' own checks would throw inside the region.
  GANNET_CHECK(M >= 0 && C >= 0 && ldq >= C, "layernorm_quantize_rows: bad sizes M=", M, " C=", C, " ldq=", ldq);
  GANNET_CHECK(std::isfinite(static_scale), "layernorm_quantize_rows: static scale ", static_scale, " is not finite");
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
        quantize_rows(row.data(), C, 1, C, static_scale, q + m * ldq, ldq, scales + m);
      });
    }
  }
  errors.rethrow();
}

}  // namespace gannet::kernels
