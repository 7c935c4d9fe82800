// Every collective of dist::MpiCommunicator against values each rank computes on its own, byte
// counts against their formulas, non-blocking forms, sub-groups, and the process-group layout.
#include <gtest/gtest.h>

#include <cstdlib>
#include <numeric>
#include <unistd.h>
#include <vector>

#include "gannet/dist/process_groups.h"
#include "gannet/dist/world.h"

namespace gannet::dist {
namespace {

// A value rank r holds at index i, distinct across ranks and indices.
float value(int r, int64_t i) { return (float)(r + 1) * 0.5f + (float)i * 0.25f; }

TEST(Collectives, AllReduceSumsEveryRanksVector) {
  Communicator& w = world();
  const int N = w.size();
  for (int64_t n : {1, 7, 1000, 4097}) {
    std::vector<float> x((size_t)n);
    for (int64_t i = 0; i < n; ++i) x[(size_t)i] = value(w.rank(), i);
    w.reset_stats();
    w.all_reduce_sum(x.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      float want = 0;
      for (int r = 0; r < N; ++r) want += value(r, i);
      EXPECT_NEAR(x[(size_t)i], want, 1e-4f * std::abs(want)) << "n " << n << " i " << i;
    }
    const CollectiveStats& s = w.stats(Collective::all_reduce);
    EXPECT_EQ(s.calls, 1);
    EXPECT_EQ(s.payload_bytes, n * 4);
    EXPECT_EQ(s.wire_bytes, n * 4 / N * (N - 1) * 2);
  }
  double d = w.rank() + 1.0;
  w.all_reduce_sum(&d, 1);
  EXPECT_DOUBLE_EQ(d, N * (N + 1) / 2.0);
  int64_t m = w.rank() == N - 1 ? 42 : w.rank();
  w.all_reduce_max(&m, 1);
  EXPECT_EQ(m, N > 1 ? std::max<int64_t>(42, N - 2) : 42);
  // Float maxima, elementwise: rank r holds -value(r, i) at even i, so rank 0 has the largest there.
  std::vector<float> f(5);
  for (int64_t i = 0; i < 5; ++i) f[(size_t)i] = i % 2 ? value(w.rank(), i) : -value(w.rank(), i);
  w.reset_stats();
  w.all_reduce_max(f.data(), 5);
  for (int64_t i = 0; i < 5; ++i) EXPECT_EQ(f[(size_t)i], i % 2 ? value(N - 1, i) : -value(0, i)) << i;
  EXPECT_EQ(w.stats(Collective::all_reduce).payload_bytes, 5 * 4);
  EXPECT_EQ(w.stats(Collective::all_reduce).wire_bytes, 5 * 4 / N * (N - 1) * 2);
}

TEST(Collectives, ReduceScatterAndAllGatherAreInverseHalves) {
  Communicator& w = world();
  const int N = w.size();
  const int64_t block = 33;
  std::vector<float> in((size_t)(block * N)), out((size_t)block), all((size_t)(block * N));
  for (int64_t i = 0; i < block * N; ++i) in[(size_t)i] = value(w.rank(), i);
  w.reset_stats();
  w.reduce_scatter_sum(in.data(), out.data(), block);
  for (int64_t i = 0; i < block; ++i) {
    float want = 0;
    for (int r = 0; r < N; ++r) want += value(r, w.rank() * block + i);
    EXPECT_NEAR(out[(size_t)i], want, 1e-4f * std::abs(want));
  }
  w.all_gather(out.data(), all.data(), block);
  for (int64_t i = 0; i < block * N; ++i) {
    float want = 0;
    for (int r = 0; r < N; ++r) want += value(r, i);
    EXPECT_NEAR(all[(size_t)i], want, 1e-4f * std::abs(want));
  }
  EXPECT_EQ(w.stats(Collective::reduce_scatter).payload_bytes, block * N * 4);
  EXPECT_EQ(w.stats(Collective::reduce_scatter).wire_bytes, block * 4 * (N - 1));
  EXPECT_EQ(w.stats(Collective::all_gather).wire_bytes, block * 4 * (N - 1));
}

TEST(Collectives, AllToAllWithUnevenCounts) {
  Communicator& w = world();
  const int N = w.size(), me = w.rank();
  // Rank r sends (r + 2 * s) % 3 values to rank s (some counts are zero), each naming sender and slot.
  auto count = [](int from, int to) { return (int64_t)((from + 2 * to) % 3); };
  std::vector<int64_t> sc((size_t)N), rc((size_t)N);
  std::vector<float> send;
  for (int s = 0; s < N; ++s) {
    sc[(size_t)s] = count(me, s);
    rc[(size_t)s] = count(s, me);
    for (int64_t j = 0; j < sc[(size_t)s]; ++j) send.push_back((float)(me * 100 + s * 10 + j));
  }
  std::vector<float> recv((size_t)std::accumulate(rc.begin(), rc.end(), int64_t(0)) + 1);
  w.reset_stats();
  w.all_to_all(send.data(), sc, recv.data(), rc);
  size_t at = 0;
  for (int s = 0; s < N; ++s)
    for (int64_t j = 0; j < rc[(size_t)s]; ++j) EXPECT_EQ(recv[at++], (float)(s * 100 + me * 10 + j));
  int64_t remote = 0;
  for (int s = 0; s < N; ++s) remote += s == me ? 0 : sc[(size_t)s];
  EXPECT_EQ(w.stats(Collective::all_to_all).wire_bytes, remote * 4);
}

TEST(Collectives, BroadcastAndNonBlockingForms) {
  Communicator& w = world();
  const int N = w.size();
  char text[16] = {0};
  if (w.rank() == N - 1) std::snprintf(text, sizeof text, "from %d", N - 1);
  w.broadcast(text, sizeof text, N - 1);
  EXPECT_STREQ(text, ("from " + std::to_string(N - 1)).c_str());

  std::vector<float> a(100, (float)w.rank()), rs_in((size_t)(8 * N), 1.f), rs_out(8), ag((size_t)(8 * N));
  auto r1 = w.all_reduce_sum_async(a.data(), 100);
  auto r2 = w.reduce_scatter_sum_async(rs_in.data(), rs_out.data(), 8);
  r1->wait();
  r2->wait();
  auto r3 = w.all_gather_async(rs_out.data(), ag.data(), 8);
  r3->wait();
  EXPECT_EQ(a[99], (float)(N * (N - 1) / 2));
  for (float v : ag) EXPECT_EQ(v, (float)N);
  w.barrier();
}

TEST(Collectives, SubGroupsFollowTheLayout) {
  Communicator& w = world();
  if (w.size() % 2) GTEST_SKIP() << "needs an even number of ranks";
  ParallelLayout l = ParallelLayout::make(w.size(), 2, w.size() >= 4 ? 2 : 1);
  ProcessGroups g = ProcessGroups::create(w, l);
  EXPECT_EQ(g.tensor->size(), 2);
  EXPECT_EQ(g.data->size(), w.size() / 2);
  // The sum of world ranks over each group equals the sum over its member list.
  auto check = [&](Communicator& c, const std::vector<int>& members) {
    double s = w.rank();
    c.all_reduce_sum(&s, 1);
    EXPECT_DOUBLE_EQ(s, std::accumulate(members.begin(), members.end(), 0.0));
    EXPECT_EQ(c.size(), (int)members.size());
  };
  check(*g.tensor, g.place.tensor_group);
  check(*g.data, g.place.data_group);
  check(*g.expert, g.place.expert_group);
  check(*g.expert_data, g.place.expert_data_group);
}

// Not a test of its own: `GANNET_DIST_DIE=1 mpirun -np 2 gannet_dist_tests --gtest_filter=Death.*`,
// run by the single-process tests, checks that a rank that dies ends the job instead of hanging it.
TEST(Death, RankThatDiesEndsTheJob) {
  if (!std::getenv("GANNET_DIST_DIE")) GTEST_SKIP() << "run by DistTrain.DeadRankEndsTheJob";
  Communicator& w = world();
  if (w.rank() == 1) _exit(3);
  float x = 1;
  w.all_reduce_sum(&x, 1);  // never completes: rank 1 is gone
}

}  // namespace
}  // namespace gannet::dist
