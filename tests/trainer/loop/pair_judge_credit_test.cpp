// A pairwise judge model feeding the estimators: the judge stage's pairwise judge (output pair_judge)
// compares every ordered pair of a group; the composite hands its preferences to the batch, and the
// credit stage builds SPO's oracle and ArenaRL's bidirectional matches from them. Checked: the
// oracle and the matches read the judge's matrix as documented (groups not contiguous), and an
// ArenaRL group of identical responses gets zero advantage under a model judge (each match a tie).
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "rewards/composite.h"
#include "tests/models/test_util.h"
#include "tests/rewards/models/model_dir_fixture.h"
#include "tests/rewards/reward_test_util.h"
#include "trainer/credit/advantage_options.h"
#include "trainer/loop/credit.h"
#include "trainer/loop/registries.h"
#include "trainer/loop/score.h"

namespace keel::loop {
namespace {

TEST(PairJudgeCredit, OraclesReadTheJudgesMatrix) {
  rollout::RolloutBatch b;
  b.group_ids = torch::tensor({0, 1, 0, 1}, torch::kLong);
  // Row i, column j: P(row i ≻ the j-th row of i's group). Group 0 = rows {0, 2}, group 1 = {1, 3}.
  b.pair_prefs = torch::tensor({{0.5, 0.8}, {0.5, 0.3}, {0.4, 0.5}, {0.9, 0.5}}, torch::kFloat);
  const auto [oracle, match] = judge_pair_oracles(b);
  EXPECT_NEAR(oracle(0, 2), 0.8, 1e-6);
  EXPECT_NEAR(oracle(2, 0), 0.4, 1e-6);
  EXPECT_NEAR(oracle(1, 3), 0.3, 1e-6);
  EXPECT_NEAR(oracle(3, 1), 0.9, 1e-6);
  // Match (0, 2): 0 scores P(0≻2) + 1 − P(2≻0) = 0.8 + 0.6, 2 scores 0.2 + 0.4.
  const auto [s0, s2] = match(0, 2);
  EXPECT_NEAR(s0, 1.4, 1e-6);
  EXPECT_NEAR(s2, 0.6, 1e-6);
}

TEST(PairJudgeCredit, AnArenaGroupOfIdenticalResponsesGetsZeroAdvantageUnderAJudgeModel) {
  models::testing::TempDir dir;
  const auto tok = rewards::testing::make_judge_tokenizer(dir.path() / "tok");
  models::Transformer judge(rewards::testing::tiny_for(*tok));
  models::testing::randomize(judge, 13);
  rewards::testing::save_with_tokenizer(judge, dir.path() / "pairwise", dir.path() / "tok");
  const std::string yaml = "reward:\n  judges:\n    - {name: pairs, type: pairwise, params: {path: " +
                           (dir.path() / "pairwise").string() +
                           ", robustness_suite: none, output: pair_judge}}\n"
                           "  components:\n    - {scheme: match_exact}\n";
  auto reward = rewards::build_composite_reward(rewards::testing::read_section(yaml), registries().rewards);
  // Group 0: four identical responses; group 1: four different ones.
  rewards::RewardInput in;
  in.prompts.assign(8, "Question: What is 3 + 4?");
  in.responses = {"7", "7", "7", "7", "7", "8", "Response: 7", "19 no"};
  in.group_ids = torch::tensor({0, 0, 0, 0, 1, 1, 1, 1}, torch::kLong);
  for (int i = 0; i < 8; ++i) in.metadata.push_back({{"answer", "7"}});
  const auto out = reward->score(in);
  ASSERT_TRUE(out.pair_prefs.defined());
  ASSERT_EQ(out.pair_prefs.sizes(), (torch::IntArrayRef{8, 4}));
  rollout::RolloutBatch b;
  b.group_ids = in.group_ids;
  b.response_ids = torch::zeros({8, 3}, torch::kLong);
  b.response_mask = torch::ones({8, 3}, torch::kLong);
  write_scores(b, out);
  ASSERT_TRUE(b.pair_prefs.defined());
  credit::AdvantageInputs ain;
  ain.token_rewards = torch::zeros({8, 3});
  ain.token_rewards.select(1, 2).copy_(b.rewards);
  ain.response_mask = b.response_mask.to(torch::kFloat);
  ain.group_ids = b.group_ids;
  std::tie(ain.preference, ain.pair_judge) = judge_pair_oracles(b);
  config::AdvantageSection sec;
  sec.estimator = "arena_rank";
  auto opts = credit::advantage_options_from(sec);
  opts.arena.judge = "none";
  const auto adv = registries().estimators.get("arena_rank").fn(ain, opts).advantages;
  EXPECT_EQ(adv.slice(0, 0, 4).abs().max().item<float>(), 0.0f) << adv;
  EXPECT_GT(adv.slice(0, 4, 8).abs().max().item<float>(), 0.0f) << adv;
}

}  // namespace
}  // namespace keel::loop
