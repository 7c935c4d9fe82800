// The memory-read bandwidth of this machine as a decode step sees it: all OpenMP threads stream a
// buffer much larger than the caches, each its own contiguous part, with vector loads. Benchmarks
// measure it in the same run as the figure they compare with it.
#pragma once
#include <cstddef>
#include <cstdint>

namespace gannet::kernels {

// Median over `reps` passes of bytes read per second (GB/s = 1e9 bytes/s) over a buffer of
// `bytes` (rounded down to whole vectors), after one untimed pass that touches the pages.
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
