#include "gannet/kernels/memory_bandwidth.h"

#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <vector>

#include "gannet/core/dispatch.h"
#include "gannet/core/error.h"

namespace gannet::kernels {

namespace ref {
float stream_sum(const float* x, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += x[i];
  return s;
}
}  // namespace ref

float stream_sum(const float* x, int64_t n) { GANNET_DISPATCH(stream_sum, x, n); }

double measure_read_bandwidth(size_t bytes, int reps) {
  GANNET_CHECK(reps >= 1, "measure_read_bandwidth: reps must be >= 1");
  const int64_t n = (int64_t)(bytes / sizeof(float)) / 64 * 64;
  GANNET_CHECK(n > 0, "measure_read_bandwidth: buffer of ", bytes, " bytes is too small");
  constexpr size_t kAlign = size_t(2) << 20;  // whole huge pages, as the engine's weights use
  size_t alloc = (n * sizeof(float) + kAlign - 1) / kAlign * kAlign;
  std::unique_ptr<float, decltype(&std::free)> buf(static_cast<float*>(std::aligned_alloc(kAlign, alloc)),
                                                   &std::free);
  GANNET_CHECK(buf != nullptr, "measure_read_bandwidth: cannot allocate ", alloc, " bytes");
  madvise(buf.get(), alloc, MADV_HUGEPAGE);
  float* x = buf.get();
  // Each thread touches the part it will read (first-touch placement), once untimed.
#pragma omp parallel
  {
    int64_t nth = omp_get_num_threads(), t = omp_get_thread_num();
    int64_t b = n * t / nth, e = n * (t + 1) / nth;
    for (int64_t i = b; i < e; ++i) x[i] = 1.f;
  }
  std::vector<double> rates;
  volatile float sink = 0;
  for (int r = 0; r < reps; ++r) {
    float total = 0;
    auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel reduction(+ : total)
    {
      int64_t nth = omp_get_num_threads(), t = omp_get_thread_num();
      int64_t b = n * t / nth / 64 * 64, e = t + 1 == nth ? n : n * (t + 1) / nth / 64 * 64;
      total += stream_sum(x + b, e - b);
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    sink = sink + total;
    rates.push_back((double)n * sizeof(float) / s / 1e9);
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

}  // namespace gannet::kernels
