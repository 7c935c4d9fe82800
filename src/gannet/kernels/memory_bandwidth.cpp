#include "gannet/kernels/memory_bandwidth.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "gannet/core/dispatch.h"
#include "gannet/core/error.h"
#include "gannet/core/huge_pages.h"

namespace gannet::kernels {

const char* read_kernel_name(ReadKernel k) {
  switch (k) {
    case ReadKernel::plain: return "plain";
    case ReadKernel::prefetch_l2: return "prefetch-L2";
    case ReadKernel::prefetch_l1: return "prefetch-L1";
    case ReadKernel::streams: return "4-streams";
    case ReadKernel::nontemporal: return "non-temporal";
  }
  return "?";
}

namespace ref {
float read_sum(ReadKernel, const float* x, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += x[i];
  return s;
}
}  // namespace ref

float read_sum(ReadKernel k, const float* x, int64_t n) { GANNET_DISPATCH(read_sum, k, x, n); }

void BandwidthTally::add(ReadKernel k, double bytes, double seconds) {
  bytes_[(size_t)k] += bytes;
  seconds_[(size_t)k] += seconds;
}

ReadKernel BandwidthTally::best_kernel() const {
  ReadKernel best = ReadKernel::plain;
  double rate = -1;
  for (ReadKernel k : kReadKernels) {
    const size_t i = (size_t)k;
    const double r = seconds_[i] > 0 ? bytes_[i] / seconds_[i] : 0.0;
    if (r > rate) rate = r, best = k;
  }
  return best;
}

double BandwidthTally::best_gbps() const {
  const size_t i = (size_t)best_kernel();
  return seconds_[i] > 0 ? bytes_[i] / seconds_[i] / 1e9 : 0.0;
}

double BandwidthTally::seconds() const {
  double s = 0;
  for (double v : seconds_) s += v;
  return s;
}

ReadBandwidthProbe::ReadBandwidthProbe(size_t bytes) {
  n_ = (int64_t)(bytes / sizeof(float)) / 64 * 64;
  GANNET_CHECK(n_ > 0, "read bandwidth probe: buffer of ", bytes, " bytes is too small (at least 256)");
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

ReadBandwidthProbe::Pass ReadBandwidthProbe::pass(ReadKernel k) const {
  const float* x = data_;
  const int64_t n = n_;
  double total = 0;
  auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel reduction(+ : total)
  {
    // Parts start on 64-float (256-byte) boundaries: aligned for every kernel's loads.
    int64_t nth = omp_get_num_threads(), t = omp_get_thread_num();
    int64_t b = n * t / nth / 64 * 64, e = t + 1 == nth ? n : n * (t + 1) / nth / 64 * 64;
    total += read_sum(k, x + b, e - b);
  }
  Pass p;
  p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  p.sum = total;
  return p;
}

void ReadBandwidthProbe::pass_into(BandwidthTally& tally, int64_t i) const {
  const ReadKernel k = kReadKernels[(size_t)(i % kReadKernelCount)];
  tally.add(k, (double)bytes(), pass(k).seconds);
}

std::vector<double> ReadBandwidthProbe::rates(ReadKernel k, int passes) const {
  GANNET_CHECK(passes >= 1, "read bandwidth probe: passes must be >= 1");
  std::vector<double> rates;
  for (int r = 0; r < passes; ++r) rates.push_back((double)bytes() / pass(k).seconds / 1e9);
  std::sort(rates.begin(), rates.end());
  return rates;
}

double ReadBandwidthProbe::measure(int passes) const {
  double best = 0;
  for (ReadKernel k : kReadKernels) {
    std::vector<double> r = rates(k, passes);
    best = std::max(best, r[r.size() / 2]);
  }
  return best;
}

double ReadBandwidthProbe::measure_best(int passes) const {
  double best = 0;
  for (ReadKernel k : kReadKernels) best = std::max(best, rates(k, passes).back());
  return best;
}

double measure_read_bandwidth(size_t bytes, int reps) {
  ReadBandwidthProbe probe(bytes);
  probe.measure(1);  // warm-up
  return probe.measure(reps);
}

}  // namespace gannet::kernels
