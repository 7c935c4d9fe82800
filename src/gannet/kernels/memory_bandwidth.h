// The memory-read bandwidth of this machine as a decode step sees it: all OpenMP threads stream a
// buffer, each its own contiguous part, with vector loads. A bound must be at least what the kernel
// it bounds can reach, so the probe reads in several ways (read_kernels()) and the bound is the best
// of them; a benchmark figure above its bound is a defect of the bound, reported as such.
// Benchmarks measure it in the same run as the figure they compare with it.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace gannet::kernels {

// How a probe pass reads its floats.
enum class ReadKernel {
  plain,        // vector loads, 4 accumulators
  prefetch_l2,  // plain, plus a prefetch into L2 4 KiB ahead (the decode kernel at one row)
  prefetch_l1,  // plain, plus a prefetch into L1 1 KiB ahead (the decode kernel at several rows)
  streams,      // 4 streams per thread: the thread's part in 4 pieces read side by side
  nontemporal,  // non-temporal (streaming) loads
};
inline constexpr int kReadKernelCount = 5;
inline constexpr std::array<ReadKernel, kReadKernelCount> kReadKernels = {
    ReadKernel::plain, ReadKernel::prefetch_l2, ReadKernel::prefetch_l1, ReadKernel::streams, ReadKernel::nontemporal};
const char* read_kernel_name(ReadKernel k);

// Sum of the n floats at x, read by kernel k (the timed loop's body; the sum is returned so that the
// reads cannot be optimized away, and so that tests can check that every float was read once).
float read_sum(ReadKernel k, const float* x, int64_t n);
namespace ref {
float read_sum(ReadKernel k, const float* x, int64_t n);  // one scalar loop whatever k
}
namespace avx2 {
float read_sum(ReadKernel k, const float* x, int64_t n);
}
namespace avx512 {
float read_sum(ReadKernel k, const float* x, int64_t n);
}

// Bytes and seconds of probe passes, per read kernel: for passes interleaved with a benchmark's
// steps, the kernels taken in turn. The bound is the best kernel's bytes over its seconds.
class BandwidthTally {
 public:
  void add(ReadKernel k, double bytes, double seconds);
  // GB/s (1e9 bytes/s) of the best kernel; 0 before any pass.
  double best_gbps() const;
  ReadKernel best_kernel() const;
  double seconds() const;  // of all passes

 private:
  std::array<double, kReadKernelCount> bytes_{}, seconds_{};
};

// A buffer (huge pages, touched first by the threads that read it), kept so that the bandwidth can
// be measured again and again beside a benchmark's repetitions: these shared machines' bandwidth
// drifts by tens of percent within minutes, and moves within a second.
class ReadBandwidthProbe {
 public:
  explicit ReadBandwidthProbe(size_t bytes = size_t(1) << 30);
  ReadBandwidthProbe(const ReadBandwidthProbe&) = delete;
  ReadBandwidthProbe& operator=(const ReadBandwidthProbe&) = delete;

  struct Pass {
    double seconds = 0;
    double sum = 0;  // of every float of the buffer, as read (all are 1: sum == floats())
  };
  // One pass over the whole buffer by all threads, each its own contiguous part, with kernel k.
  Pass pass(ReadKernel k) const;
  // One pass with kernel kReadKernels[i % kReadKernelCount], added to `tally`.
  void pass_into(BandwidthTally& tally, int64_t i) const;
  // GB/s: for each kernel the median of `passes` passes, and the best of those medians.
  double measure(int passes = 3) const;
  // GB/s of the fastest single pass of any kernel, `passes` passes of each.
  double measure_best(int passes = 3) const;
  size_t bytes() const { return (size_t)n_ * sizeof(float); }
  int64_t floats() const { return n_; }

 private:
  std::vector<double> rates(ReadKernel k, int passes) const;  // sorted
  std::shared_ptr<void> owner_;
  float* data_ = nullptr;
  int64_t n_ = 0;
};

// One probe of `bytes`, measure(reps) after one warm-up pass of each kernel.
double measure_read_bandwidth(size_t bytes = size_t(1) << 30, int reps = 7);

}  // namespace gannet::kernels
