// Tests of the DataPRM ternary step reward (spec rewards.md C2).
#include "rewards/schemes/dataprm.h"

#include <gtest/gtest.h>

#include "tests/rewards/schemes/test_util.h"

namespace keel::rewards {
namespace {

using testing::dt;

TEST(DataPrm, WorkedExample) {
  // [1, 0.5, 1]: min 0.5, mean 0.8333333, prod 0.5.
  DataPrmOptions o;
  auto s = dt({1, 0.5, 1}).view({1, 3});
  auto m = torch::ones({1, 3}, torch::kBool);
  EXPECT_NEAR(dataprm_aggregate(s, m, "min", o).value.item<double>(), 0.5, 1e-12);
  EXPECT_NEAR(dataprm_aggregate(s, m, "mean", o).value.item<double>(), 0.8333333, 1e-6);
  EXPECT_NEAR(dataprm_aggregate(s, m, "prod", o).value.item<double>(), 0.5, 1e-12);
  EXPECT_FALSE(dataprm_aggregate(s, m, "mean", o).flagged.item<bool>());
  // One step −1 (parse failure) -> excluded: mean of [1, 1] = 1.0, sample flagged.
  auto f = dt({1, -1, 1}).view({1, 3});
  auto agg = dataprm_aggregate(f, m, "mean", o);
  EXPECT_NEAR(agg.value.item<double>(), 1.0, 1e-12);
  EXPECT_TRUE(agg.flagged.item<bool>());
  // RL reward: R_outcome + 0.5·mean -> 1 + 0.5·0.8333333.
  EXPECT_NEAR(dataprm_reward(dt({1}), s, m, o).item<double>(), 1 + 0.5 * 2.5 / 3, 1e-12);
  o.parse_error = "zero";
  EXPECT_NEAR(dataprm_aggregate(f, m, "mean", o).value.item<double>(), 2.0 / 3, 1e-12);
}

TEST(DataPrm, ParseScores) {
  DataPrmOptions o;
  EXPECT_EQ(dataprm_parse_score("Analysis ... Score: 0.5", o), 0.5);
  EXPECT_EQ(dataprm_parse_score("step 3 looks fine, \\boxed{1}", o), 1.0);
  EXPECT_EQ(dataprm_parse_score("\\boxed{0}", o), 0.0);
  EXPECT_EQ(dataprm_parse_score("\\boxed{0.7}", o), -1.0);
  EXPECT_EQ(dataprm_parse_score("no verdict", o), -1.0);
  EXPECT_EQ(dataprm_parse_score("score 2", o), -1.0);
}

TEST(DataPrm, FinalStepRuleAndBestOfN) {
  DataPrmOptions o;
  o.max_steps = 3;
  auto s = dt({1, 1, 1, 1, 1, 1, 1, 1, 0}).view({3, 3});
  auto m = torch::tensor({true, true, true, true, true, true, true, true, false}).view({3, 3});
  // Row 0 reached step 3 without an answer -> step 3 scores 0; row 1 answered; row 2 stopped at 2.
  auto out = dataprm_final_step_rule(s, m, torch::tensor({false, true, false}), o);
  EXPECT_TRUE(torch::equal(out, dt({1, 1, 0, 1, 1, 1, 1, 1, 0}).view({3, 3})));
  // Best of N in one group: min [0, 1, 1] -> rows 1, 2 tie on min; means 1 and 1 -> first (row 1).
  auto pick = dataprm_best_of_n(out, m, testing::lt({4, 4, 4}), o);
  EXPECT_TRUE(torch::equal(pick, torch::tensor({false, true, false})));
  auto s2 = dt({0.5, 1, 1, 0.5, 0.5, 1}).view({2, 3});
  auto pick2 = dataprm_best_of_n(s2, torch::ones({2, 3}, torch::kBool), testing::lt({0, 0}), o);
  EXPECT_TRUE(torch::equal(pick2, torch::tensor({true, false})));  // same min, higher mean
  auto e = testing::read_yaml("  parse_error: ignore\n", o, read_dataprm_options);
  EXPECT_EQ(e.size(), 1u);
}

}  // namespace
}  // namespace keel::rewards
