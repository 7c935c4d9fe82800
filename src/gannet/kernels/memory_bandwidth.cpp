#include "gannet/kernels/memory_bandwidth.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <vector>

#include "gannet/core/dispatch.h"
#include "gannet/core/error.h"
#include "gannet/core/huge_pages.h"

namespace gannet::kernels {

namespace ref {
float stream_sum(const float* x, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += x[i];
  return s;
}
}  // namespace ref

float stream_sum(const float* x, int64_t n) { GANNET_DISPATCH(stream_sum, x, n); }

ReadBandwidthProbe::ReadBandwidthProbe(size_t bytes) {
  n_ = (int64_t)(bytes / sizeof(float)) / 64 * 64;
  GANNET_CHECK(n_ > 0, "read bandwidth probe: buffer of ", bytes, " bytes is too small");
  owner_ = allocate_huge_pages(n_ * sizeof(float), "the read bandwidth probe");
  data_ = static_cast<float*>(owner_.get());
  float* x = data_;
  const int64_t n = n_;
  // Each thread touches the part it will read (first-touch placement).
#pragma omp parallel
  {
    int64_t nth = omp_get_num_threads(), t = omp_get_thread_num();
    int64_t b = n * t / nth, e = n * (t + 1) / nth;
    for (int64_t i = b; i < e; ++i) x[i] = 1.f;
  }
}

double ReadBandwidthProbe::measure(int passes) const {
  std::vector<double> r = rates(passes);
  return r[r.size() / 2];
}

double ReadBandwidthProbe::measure_best(int passes) const { return rates(passes).back(); }

double ReadBandwidthProbe::pass_seconds() const {
  volatile float sink = 0;
  const float* x = data_;
  const int64_t n = n_;
  float total = 0;
  auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel reduction(+ : total)
  {
    int64_t nth = omp_get_num_threads(), t = omp_get_thread_num();
    int64_t b = n * t / nth / 64 * 64, e = t + 1 == nth ? n : n * (t + 1) / nth / 64 * 64;
    total += stream_sum(x + b, e - b);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  sink = sink + total;
  return s;
}

std::vector<double> ReadBandwidthProbe::rates(int passes) const {
  GANNET_CHECK(passes >= 1, "read bandwidth probe: passes must be >= 1");
  std::vector<double> rates;
  for (int r = 0; r < passes; ++r) rates.push_back((double)bytes() / pass_seconds() / 1e9);
  std::sort(rates.begin(), rates.end());
  return rates;
}

double measure_read_bandwidth(size_t bytes, int reps) {
  ReadBandwidthProbe probe(bytes);
  probe.measure(1);  // warm-up
  return probe.measure(reps);
}

}  // namespace gannet::kernels
