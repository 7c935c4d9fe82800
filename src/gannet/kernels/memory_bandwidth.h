// The memory-read bandwidth of this machine as a decode step sees it: all OpenMP threads stream a
// buffer much larger than the caches, each its own contiguous part, with vector loads. Benchmarks
// measure it in the same run as the figure they compare with it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace gannet::kernels {

// A buffer much larger than the caches (huge pages, touched once by the threads that read it), kept
// so that the bandwidth can be measured again and again beside a benchmark's repetitions: these
// shared machines' bandwidth drifts by tens of percent within minutes.
class ReadBandwidthProbe {
 public:
  explicit ReadBandwidthProbe(size_t bytes = size_t(1) << 30);
  ReadBandwidthProbe(const ReadBandwidthProbe&) = delete;
  ReadBandwidthProbe& operator=(const ReadBandwidthProbe&) = delete;
  // Median over `passes` of bytes read per second, in GB/s (1e9 bytes/s).
  double measure(int passes = 3) const;
  // The best of `passes`.
  double measure_best(int passes = 3) const;
  // Seconds of one pass over the buffer (bytes() bytes), for probes interleaved with a benchmark's
  // steps.
  double pass_seconds() const;
  size_t bytes() const { return (size_t)n_ * sizeof(float); }

 private:
  std::vector<double> rates(int passes) const;
  std::shared_ptr<void> owner_;
  float* data_ = nullptr;
  int64_t n_ = 0;
};

// One probe, median of `reps` passes.
double measure_read_bandwidth(size_t bytes = size_t(1) << 30, int reps = 7);

// Sum of n floats (the timed loop's body; returned so that the reads cannot be optimized away).
float stream_sum(const float* x, int64_t n);
namespace ref {
float stream_sum(const float* x, int64_t n);
}
namespace avx2 {
float stream_sum(const float* x, int64_t n);
}
namespace avx512 {
float stream_sum(const float* x, int64_t n);
}

}  // namespace gannet::kernels
