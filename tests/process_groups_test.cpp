// The hybrid-parallel layout (tensor innermost, then data; expert groups inside data groups) as a
// pure function of the world size, against groups listed by hand.
#include "gannet/dist/process_groups.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "gannet/dist/communicator.h"
#include "test_files.h"

namespace gannet::dist {
namespace {

TEST(ProcessGroups, EightRanksTensorTwoExpertTwo) {
  ParallelLayout l = ParallelLayout::make(8, 2, 2);
  EXPECT_EQ(l.data, 4);
  RankPlace p = place_of(l, 5);  // data rank 2, tensor rank 1
  EXPECT_EQ(p.tensor_rank, 1);
  EXPECT_EQ(p.data_rank, 2);
  EXPECT_EQ(p.expert_rank, 0);
  EXPECT_EQ(p.expert_data_rank, 1);
  EXPECT_EQ(p.tensor_group, (std::vector<int>{4, 5}));
  EXPECT_EQ(p.data_group, (std::vector<int>{1, 3, 5, 7}));
  EXPECT_EQ(p.expert_group, (std::vector<int>{5, 7}));
  EXPECT_EQ(p.expert_data_group, (std::vector<int>{1, 5}));
}

TEST(ProcessGroups, EveryRankIsInExactlyOneGroupOfEachKind) {
  ParallelLayout l = ParallelLayout::make(12, 3, 2);
  for (int r = 0; r < 12; ++r) {
    RankPlace p = place_of(l, r);
    for (const auto* g : {&p.tensor_group, &p.data_group, &p.expert_group, &p.expert_data_group}) {
      EXPECT_EQ(std::count(g->begin(), g->end(), r), 1) << "rank " << r;
      for (int m : *g) {  // the group is the same seen from any member
        RankPlace q = place_of(l, m);
        if (g == &p.tensor_group) EXPECT_EQ(q.tensor_group, *g);
        if (g == &p.data_group) EXPECT_EQ(q.data_group, *g);
        if (g == &p.expert_group) EXPECT_EQ(q.expert_group, *g);
        if (g == &p.expert_data_group) EXPECT_EQ(q.expert_data_group, *g);
      }
    }
    EXPECT_EQ(p.expert_group.size() * p.expert_data_group.size(), p.data_group.size());
  }
}

TEST(ProcessGroups, LayoutsThatCannotWorkAreErrors) {
  using testing::has, testing::message_of;
  EXPECT_TRUE(has(message_of([] { ParallelLayout::make(6, 4, 1); }), "cannot be split into tensor-parallel groups of 4"));
  EXPECT_TRUE(has(message_of([] { ParallelLayout::make(6, 2, 2); }), "is not a multiple of expert 2"));
  EXPECT_TRUE(has(message_of([] { ParallelLayout::make(4, 0, 1); }), "must be positive"));
}

TEST(ProcessGroups, OneProcessHasTrivialGroups) {
  LocalCommunicator w;
  ProcessGroups g = ProcessGroups::create(w, ParallelLayout::make(1, 1, 1));
  EXPECT_EQ(g.data->size(), 1);
  float x[3] = {1, 2, 3}, y[3];
  g.data->reduce_scatter_sum(x, y, 3);
  EXPECT_EQ(y[2], 3.f);
  EXPECT_EQ(g.data->stats(Collective::reduce_scatter).wire_bytes, 0);
}

}  // namespace
}  // namespace gannet::dist
