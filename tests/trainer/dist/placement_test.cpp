// Disaggregated rank layout: learners first, then rollout, then reward ranks; who scores whose rows;
// the two groups; bad counts are errors naming them.
#include "trainer/dist/placement.h"

#include <gtest/gtest.h>

#include "base/error.h"

namespace keel::dist {
namespace {

TEST(Placement, LayoutOfTwoLearnersThreeRolloutsTwoRewardRanks) {
  const auto p = make_placement(2, 3, 2, 7);
  // ranks 0,1 learners; 2,3,4 rollout 0,1,2; 5,6 reward 0,1
  const std::vector<Role> roles{Role::kLearner, Role::kLearner, Role::kRollout, Role::kRollout,
                                Role::kRollout, Role::kReward,  Role::kReward};
  const std::vector<int> index{0, 1, 0, 1, 2, 0, 1};
  for (int r = 0; r < 7; ++r) {
    EXPECT_EQ(p.role_of(r), roles[static_cast<size_t>(r)]) << r;
    EXPECT_EQ(p.index_of(r), index[static_cast<size_t>(r)]) << r;
  }
  // rollout i -> reward rank i % 2: 0 -> 5, 1 -> 6, 2 -> 5
  EXPECT_EQ(p.source_of_rollout(0), 5);
  EXPECT_EQ(p.source_of_rollout(1), 6);
  EXPECT_EQ(p.source_of_rollout(2), 5);
  EXPECT_EQ(p.rollouts_of_reward(0), (std::vector<int>{0, 2}));
  EXPECT_EQ(p.rollouts_of_reward(1), (std::vector<int>{1}));
  EXPECT_EQ(p.learner_group(), (std::vector<int>{0, 1}));
  EXPECT_EQ(p.sync_group(), (std::vector<int>{0, 2, 3, 4}));
  EXPECT_STREQ(role_name(p.role_of(6)), "reward");
}

TEST(Placement, WithoutRewardRanksRolloutRanksScoreTheirOwnRows) {
  const auto p = make_placement(1, 3, 0, 4);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(p.source_of_rollout(i), 1 + i);
  EXPECT_TRUE(p.rollouts_of_reward(0).empty());
}

TEST(Placement, BadCountsAreErrors) {
  EXPECT_THROW(make_placement(0, 1, 0, 1), Error);
  EXPECT_THROW(make_placement(1, 0, 0, 1), Error);
  try {
    make_placement(1, 2, 1, 5);
    ADD_FAILURE() << "a sum other than the world size must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("1 + 2 + 1 must equal the world size 5"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make_placement(1, 1, 0, 2).role_of(2), Error);
}

}  // namespace
}  // namespace keel::dist
