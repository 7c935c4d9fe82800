// Pacing functions (curriculum difficulty, random-LTD kept tokens) at hand-computed steps.
#include <gtest/gtest.h>

#include "gannet/data/pacing.h"
#include "test_files.h"

using namespace gannet;
using data::Pacing;
using data::PacingType;

TEST(Pacing, FixedLinearRoundsDownToTheStepAndEndsAtMax) {
  Pacing p;
  p.type = PacingType::fixed_linear;
  p.min_value = 8, p.max_value = 128, p.total_steps = 100, p.value_step = 8;
  EXPECT_EQ(p.at(0), 8);
  EXPECT_EQ(p.at(10), 16);   // 0.1 * 120 + 8 = 20 -> 16
  EXPECT_EQ(p.at(50), 64);   // 68 -> 64
  EXPECT_EQ(p.at(99), 120);  // 126.8 -> 126 -> 120
  EXPECT_EQ(p.at(100), 128);
  EXPECT_EQ(p.at(100000), 128);
}

TEST(Pacing, FixedRootFollowsTheRoot) {
  Pacing p;
  p.type = PacingType::fixed_root;
  p.min_value = 1, p.max_value = 100, p.total_steps = 100, p.value_step = 1, p.root_degree = 2;
  EXPECT_EQ(p.at(0), 1);
  EXPECT_EQ(p.at(1), 10);   // sqrt(0.01) * 99 + 1 = 10.9
  EXPECT_EQ(p.at(25), 50);  // 0.5 * 99 + 1 = 50.5
  EXPECT_EQ(p.at(64), 80);  // 0.8 * 99 + 1 = 80.2
  EXPECT_EQ(p.at(100), 100);
  p.root_degree = 3, p.total_steps = 1000;
  EXPECT_EQ(p.at(27), 30);  // 0.3 * 99 + 1 = 30.7 (cube root of 0.027)
}

TEST(Pacing, FixedDiscreteHoldsEachValueUpToItsMaxStep) {
  Pacing p;
  p.type = PacingType::fixed_discrete;
  p.discrete_values = {1, 2, 3};
  p.discrete_max_steps = {5, 10};
  p.validate("test");
  for (int s = 0; s <= 5; ++s) EXPECT_EQ(p.at(s), 1) << s;
  for (int s = 6; s <= 10; ++s) EXPECT_EQ(p.at(s), 2) << s;
  EXPECT_EQ(p.at(11), 3);
  EXPECT_EQ(p.at(1000), 3);
}

TEST(Pacing, NeverBelowMinAfterRounding) {
  Pacing p;
  p.min_value = 1, p.max_value = 64, p.total_steps = 10, p.value_step = 8;
  EXPECT_EQ(p.at(0), 1);  // DeepSpeed would round 1 down to 0
  EXPECT_EQ(p.at(5), 32);
}

TEST(Pacing, BadSettingsNameTheKey) {
  Pacing p;
  p.min_value = 10, p.max_value = 5;
  EXPECT_TRUE(gannet::testing::has(gannet::testing::message_of([&] { p.validate("curriculum_metrics.seqlen_truncate"); }),
                           "curriculum_metrics.seqlen_truncate: min 10 is above max 5"));
  EXPECT_TRUE(gannet::testing::has(gannet::testing::message_of([] { data::parse_pacing_type("fixed_cosine", "x.schedule_type"); }),
                           "x.schedule_type: 'fixed_cosine' is not supported"));
  Pacing d;
  d.type = PacingType::fixed_discrete;
  d.discrete_values = {1, 2};
  d.discrete_max_steps = {};
  EXPECT_TRUE(gannet::testing::has(gannet::testing::message_of([&] { d.validate("m"); }), "m.schedule_config.max_step"));
}
