// N:M masks and the projection onto the N:M set (compress/nm_mask.h), against a brute-force
// search of every subset of each run.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gannet/compress/nm_mask.h"
#include "test_files.h"

using namespace gannet;
using namespace gannet::testing;

namespace {

std::vector<float> random_matrix(int64_t N, int64_t K, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> w((size_t)(N * K));
  for (float& x : w) x = normal(rng);
  return w;
}

// The subset of n of the run's m entries with the largest sum of squares (the nearest point of the
// N:M set in the Euclidean norm), the first such subset in the order of the bit masks' values
// reversed so that lower columns win ties.
std::vector<uint8_t> best_subset(const float* w, int n, int m) {
  double best = -1;
  unsigned best_bits = 0;
  for (unsigned bits = 0; bits < (1u << m); ++bits) {
    if (__builtin_popcount(bits) != n) continue;
    double s = 0;
    for (int i = 0; i < m; ++i)
      if (bits >> i & 1) s += (double)w[i] * w[i];
    // Equal sums: prefer the subset whose highest differing column is absent (lower columns kept).
    if (s > best || (s == best && (bits ^ best_bits) != 0 && !(bits >> (31 - __builtin_clz(bits ^ best_bits)) & 1))) {
      best = s;
      best_bits = bits;
    }
  }
  std::vector<uint8_t> keep((size_t)m);
  for (int i = 0; i < m; ++i) keep[(size_t)i] = best_bits >> i & 1;
  return keep;
}

}  // namespace

TEST(NmPattern, ParsesAndRejects) {
  const NmPattern p = NmPattern::parse("2:4", "cfg");
  EXPECT_EQ(p.n, 2);
  EXPECT_EQ(p.m, 4);
  EXPECT_EQ(p.index_bits(), 2);
  EXPECT_EQ(p.describe(), "2:4");
  EXPECT_EQ(NmPattern::parse("1:4", "x").index_bits(), 2);
  EXPECT_EQ(NmPattern::parse("4:8", "x").index_bits(), 3);
  EXPECT_EQ(NmPattern::parse("2:8", "x").index_bits(), 3);
  EXPECT_EQ(NmPattern::parse("1:2", "x").index_bits(), 1);
  EXPECT_EQ(NmPattern::parse("3:16", "x").index_bits(), 4);
  EXPECT_EQ(NmPattern::parse("2:5", "x").index_bits(), 3);
  for (const char* bad : {"4:4", "0:4", "2:1", "2:17", "a:b", "2-4", "2:4:1", "", ":4", "2:", " 2:4", "-1:4", "999:4"})
    EXPECT_TRUE(has(message_of([&] { NmPattern::parse(bad, "cfg.pattern"); }), "cfg.pattern: N:M pattern"))
        << bad;
}

TEST(NmPattern, MaskKeepsTheLargestOfEveryRunAsABruteForceSearchDoes) {
  for (const auto& [n, m] : std::vector<std::pair<int, int>>{{2, 4}, {1, 4}, {2, 8}, {4, 8}, {1, 2}, {3, 16}, {2, 5}}) {
    const NmPattern p{n, m};
    const int64_t N = 7, K = 4 * m;
    std::vector<float> w = random_matrix(N, K, (uint32_t)(n * 100 + m));
    // Ties and zeros: a run of equal magnitudes of both signs, and a run of zeros.
    for (int i = 0; i < m; ++i) w[(size_t)(K + i)] = (i % 2 ? -0.5f : 0.5f);
    for (int i = 0; i < m; ++i) w[(size_t)(2 * K + m + i)] = 0.f;
    const std::vector<uint8_t> mask = compress::nm_mask(w.data(), N, K, p);
    for (int64_t run = 0; run < N * K / m; ++run) {
      const std::vector<uint8_t> expected = best_subset(w.data() + run * m, n, m);
      for (int i = 0; i < m; ++i)
        ASSERT_EQ(mask[(size_t)(run * m + i)], expected[(size_t)i]) << p.describe() << " run " << run << " column " << i;
    }
  }
}

TEST(NmPattern, ProjectionIsTheMaskedMatrixAndIdempotent) {
  const NmPattern p{2, 4};
  const int64_t N = 5, K = 32;
  const std::vector<float> w = random_matrix(N, K, 3);
  std::vector<float> proj = w;
  compress::nm_project(proj.data(), N, K, p);
  const std::vector<uint8_t> mask = compress::nm_mask(w.data(), N, K, p);
  for (int64_t i = 0; i < N * K; ++i) EXPECT_EQ(proj[(size_t)i], mask[(size_t)i] ? w[(size_t)i] : 0.f);
  EXPECT_TRUE(compress::satisfies_nm(proj.data(), N, K, p));
  EXPECT_FALSE(compress::satisfies_nm(w.data(), N, K, p));
  std::vector<float> twice = proj;
  compress::nm_project(twice.data(), N, K, p);
  EXPECT_EQ(twice, proj);
}

TEST(NmPattern, BadInputIsAOneLineError) {
  const std::vector<float> w = random_matrix(2, 8, 4);
  EXPECT_TRUE(has(message_of([&] { compress::nm_mask(w.data(), 2, 6, NmPattern{2, 4}); }), "runs of 4"));
  EXPECT_TRUE(has(message_of([&] { compress::nm_mask(w.data(), 2, 8, NmPattern{4, 4}); }), "N:M pattern 4:4"));
  std::vector<float> bad = w;
  bad[9] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(has(message_of([&] { compress::nm_mask(bad.data(), 2, 8, NmPattern{2, 4}); }), "weight 1, 1 is not finite"));
}
