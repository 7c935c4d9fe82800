#include "gannet/kernels/moe_dispatch.h"

namespace gannet::kernels {

namespace ref {
void combine_rows(const float* src, const float* w, const int32_t* token_offsets, const int32_t* token_slots,
                  int64_t N, int64_t C, bool accumulate, float* dst) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      double acc = accumulate ? dst[n * C + c] : 0.0;
      for (int32_t i = token_offsets[n]; i < token_offsets[n + 1]; ++i) {
        const int64_t s = token_slots[i];
        acc += (double)(w ? w[s] : 1.f) * src[s * C + c];
      }
      dst[n * C + c] = (float)acc;
    }
}
void scaled_gather_rows(const float* src, const int32_t* idx, const float* scale, int64_t M, int64_t C, float* dst) {
  for (int64_t s = 0; s < M; ++s)
    for (int64_t c = 0; c < C; ++c) dst[s * C + c] = scale[s] * src[(int64_t)idx[s] * C + c];
}
void gathered_row_dots(const float* a, const int32_t* idx, const float* b, int64_t M, int64_t C, float* out) {
  for (int64_t s = 0; s < M; ++s) {
    double acc = 0;
    for (int64_t c = 0; c < C; ++c) acc += (double)a[(int64_t)idx[s] * C + c] * b[s * C + c];
    out[s] = (float)acc;
  }
}
}  // namespace ref

static bool worth_threads(int64_t rows, int64_t C) { return rows * C >= (1 << 15); }

void combine_rows(const float* src, const float* w, const int32_t* token_offsets, const int32_t* token_slots,
                  int64_t N, int64_t C, bool accumulate, float* dst) {
#pragma omp parallel for schedule(static) if (worth_threads(N, C))
  for (int64_t n = 0; n < N; ++n) {
    float* d = dst + n * C;
    if (!accumulate)
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) d[c] = 0.f;
    for (int32_t i = token_offsets[n]; i < token_offsets[n + 1]; ++i) {
      const int64_t s = token_slots[i];
      const float ws = w ? w[s] : 1.f;
      const float* x = src + s * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) d[c] += ws * x[c];
    }
  }
}

void scaled_gather_rows(const float* src, const int32_t* idx, const float* scale, int64_t M, int64_t C, float* dst) {
#pragma omp parallel for schedule(static) if (worth_threads(M, C))
  for (int64_t s = 0; s < M; ++s) {
    const float* x = src + (int64_t)idx[s] * C;
    float* d = dst + s * C;
    const float k = scale[s];
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) d[c] = k * x[c];
  }
}

void gathered_row_dots(const float* a, const int32_t* idx, const float* b, int64_t M, int64_t C, float* out) {
#pragma omp parallel for schedule(static) if (worth_threads(M, C))
  for (int64_t s = 0; s < M; ++s) {
    const float* x = a + (int64_t)idx[s] * C;
    const float* y = b + s * C;
    float acc = 0.f;
#pragma omp simd reduction(+ : acc)
    for (int64_t c = 0; c < C; ++c) acc += x[c] * y[c];
    out[s] = acc;
  }
}

}  // namespace gannet::kernels
