#include "gannet/kernels/onednn_int8_gemm.h"

#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "gannet/core/error.h"

namespace gannet::kernels {

void onednn_gemm_u8s8s32(int64_t M, int64_t N, int64_t K, const uint8_t* A, const int8_t* B, int32_t* C) {
  const int32_t c_offset = 0;  // 'F': one fixed offset added to C
  const dnnl_status_t s = dnnl_gemm_u8s8s32('N', 'T', 'F', M, N, K, 1.f, A, K, 0, B, K, 0, 0.f, C, N, &c_offset);
  GANNET_CHECK(s == dnnl_success, "oneDNN u8s8s32 GEMM failed (status ", (int)s, ") for M ", M, ", N ", N, ", K ", K);
}

double measure_onednn_int8_gops(int64_t n, int runs) {
  GANNET_CHECK(n >= 1 && runs >= 1, "measure_onednn_int8_gops: n and runs must be >= 1");
  std::vector<uint8_t> a(n * n, 3);
  std::vector<int8_t> b(n * n, -2);
  std::vector<int32_t> c(n * n);
  std::vector<double> t;
  for (int r = 0; r <= runs; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    onednn_gemm_u8s8s32(n, n, n, a.data(), b.data(), c.data());
    if (r > 0) t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return 2.0 * (double)n * n * n / t[t.size() / 2] / 1e9;
}

}  // namespace gannet::kernels
