#include "gannet/kernels/token_gather.h"

#include <cstring>
#include <vector>

#include "gannet/core/error.h"

namespace gannet::kernels {

void check_row_indices(const int32_t* idx, int64_t M, int64_t N) {
  std::vector<uint8_t> seen((size_t)N, 0);
  for (int64_t i = 0; i < M; ++i) {
    GANNET_CHECK(idx[i] >= 0 && idx[i] < N, "token gather: row index ", idx[i], " at ", i, " is outside [0, ", N, ")");
    GANNET_CHECK(!seen[(size_t)idx[i]], "token gather: row index ", idx[i], " repeats");
    seen[(size_t)idx[i]] = 1;
  }
}

namespace ref {
void gather_rows(const float* src, const int32_t* idx, int64_t M, int64_t C, float* dst) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t c = 0; c < C; ++c) dst[i * C + c] = src[(int64_t)idx[i] * C + c];
}
void scatter_rows(const float* src, const int32_t* idx, int64_t M, int64_t C, float* dst) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t c = 0; c < C; ++c) dst[(int64_t)idx[i] * C + c] = src[i * C + c];
}
void scatter_add_rows(const float* src, const int32_t* idx, int64_t M, int64_t C, float* dst) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t c = 0; c < C; ++c) dst[(int64_t)idx[i] * C + c] += src[i * C + c];
}
void zero_rows(float* dst, const int32_t* idx, int64_t M, int64_t C) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t c = 0; c < C; ++c) dst[(int64_t)idx[i] * C + c] = 0.f;
}
}  // namespace ref

// Parallel only when there is enough to copy to pay for the fork.
static bool worth_threads(int64_t M, int64_t C) { return M * C >= (1 << 15); }

void gather_rows(const float* src, const int32_t* idx, int64_t M, int64_t C, float* dst) {
#pragma omp parallel for schedule(static) if (worth_threads(M, C))
  for (int64_t i = 0; i < M; ++i) std::memcpy(dst + i * C, src + (int64_t)idx[i] * C, (size_t)C * sizeof(float));
}

void scatter_rows(const float* src, const int32_t* idx, int64_t M, int64_t C, float* dst) {
#pragma omp parallel for schedule(static) if (worth_threads(M, C))
  for (int64_t i = 0; i < M; ++i) std::memcpy(dst + (int64_t)idx[i] * C, src + i * C, (size_t)C * sizeof(float));
}

void scatter_add_rows(const float* src, const int32_t* idx, int64_t M, int64_t C, float* dst) {
#pragma omp parallel for schedule(static) if (worth_threads(M, C))
  for (int64_t i = 0; i < M; ++i) {
    float* d = dst + (int64_t)idx[i] * C;
    const float* s = src + i * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) d[c] += s[c];
  }
}

void zero_rows(float* dst, const int32_t* idx, int64_t M, int64_t C) {
#pragma omp parallel for schedule(static) if (worth_threads(M, C))
  for (int64_t i = 0; i < M; ++i) std::memset(dst + (int64_t)idx[i] * C, 0, (size_t)C * sizeof(float));
}

}  // namespace gannet::kernels
