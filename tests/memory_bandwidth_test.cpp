// The read-bandwidth probe's kernels read the floats they claim: each one's sum equals the scalar
// reference's, at every ISA, at awkward lengths and misaligned starts; a probe pass reads the whole
// buffer once with every kernel; the tally's bound is the best kernel's.
#include "gannet/kernels/memory_bandwidth.h"

#include "gannet/core/error.h"
#include "kernel_test_util.h"

using namespace gannet;
using namespace gannet::testing;
namespace k = gannet::kernels;

namespace {
float isa_read_sum(Isa isa, k::ReadKernel kernel, const float* x, int64_t n) {
  return isa == Isa::avx512 ? k::avx512::read_sum(kernel, x, n) : k::avx2::read_sum(kernel, x, n);
}
}  // namespace

TEST(ReadBandwidth, EveryKernelSumsEveryFloatOnce) {
  // Small integers: every partial sum is exact, so a float skipped or read twice changes the sum.
  std::vector<float> x(50000 + 64);
  for (size_t i = 0; i < x.size(); ++i) x[i] = (float)(1 + i % 5);
  for (Isa isa : vector_isas())
    for (k::ReadKernel kernel : k::kReadKernels)
      for (int64_t start : {0, 1, 3, 16})  // misaligned starts (non-temporal loads need aligned ones)
        for (int64_t n : awkward_sizes()) {
          if (start + n > (int64_t)x.size()) continue;
          const float want = k::ref::read_sum(kernel, x.data() + start, n);
          EXPECT_EQ(isa_read_sum(isa, kernel, x.data() + start, n), want)
              << isa_name(isa) << " " << k::read_kernel_name(kernel) << " start " << start << " n " << n;
        }
}

TEST(ReadBandwidth, ReferenceSumsTheBuffer) {
  const std::vector<float> x = {1, 2, 3, 4, 5};
  EXPECT_EQ(k::ref::read_sum(k::ReadKernel::plain, x.data(), 5), 15.f);
  EXPECT_EQ(k::ref::read_sum(k::ReadKernel::plain, x.data(), 2), 3.f);
}

TEST(ReadBandwidth, ProbePassReadsTheWholeBufferWithEveryKernel) {
  const k::ReadBandwidthProbe probe((size_t(4) << 20) + 4 * 64 * 3);  // not a multiple of the threads' parts
  EXPECT_EQ(probe.floats(), (int64_t)((size_t(4) << 20) / 4 + 64 * 3));
  for (k::ReadKernel kernel : k::kReadKernels) {
    const k::ReadBandwidthProbe::Pass p = probe.pass(kernel);
    EXPECT_EQ(p.sum, (double)probe.floats()) << k::read_kernel_name(kernel);
    EXPECT_GT(p.seconds, 0.0);
  }
  EXPECT_GT(probe.measure_best(1), 0.0);
}

TEST(ReadBandwidth, TallyBoundIsTheBestKernelsBytesOverSeconds) {
  k::BandwidthTally t;
  EXPECT_EQ(t.best_gbps(), 0.0);
  t.add(k::ReadKernel::plain, 10e9, 1.0);        // 10 GB/s
  t.add(k::ReadKernel::streams, 6e9, 0.5);       // 12 GB/s
  t.add(k::ReadKernel::streams, 6e9, 1.5);       // with the first: 12e9 over 2 s, 6 GB/s
  t.add(k::ReadKernel::nontemporal, 11e9, 1.0);  // 11 GB/s
  EXPECT_EQ(t.best_kernel(), k::ReadKernel::nontemporal);
  EXPECT_DOUBLE_EQ(t.best_gbps(), 11.0);
  EXPECT_DOUBLE_EQ(t.seconds(), 4.0);
}

TEST(ReadBandwidth, PassIntoTakesTheKernelsInTurn) {
  const k::ReadBandwidthProbe probe(size_t(1) << 20);
  for (int64_t i = 0; i < 2 * k::kReadKernelCount; ++i) {
    k::BandwidthTally t;
    probe.pass_into(t, i);
    EXPECT_EQ(t.best_kernel(), k::kReadKernels[(size_t)(i % k::kReadKernelCount)]) << i;
    EXPECT_GT(t.best_gbps(), 0.0);
  }
}

TEST(ReadBandwidth, RejectsABufferTooSmall) {
  EXPECT_THROW(k::ReadBandwidthProbe(100), Error);
}
