// A process reward reaching the credit stage: two responses with the same final answer and the same
// first step but a different middle step. The judge stage's PRM scores every step prefix (one
// batched pass); prm (dense: true) puts each step's score on the step's last token — the shared
// first step scores the same in both, the differing middle step does not — and REINFORCE++'s token
// returns turn that into different token advantages on the tokens up to the middle step.
#include <gtest/gtest.h>

#include <cmath>

#include <torch/torch.h>

#include "base/node.h"
#include "base/reader.h"
#include "rewards/composite.h"
#include "tests/models/test_util.h"
#include "tests/rewards/models/model_dir_fixture.h"
#include "tests/rewards/reward_test_util.h"
#include "trainer/credit/advantage_options.h"
#include "trainer/loop/registries.h"

namespace keel::loop {
namespace {

TEST(PrmCredit, AWrongMiddleStepWithTheSameOutcomeGetsDifferentTokenAdvantages) {
  models::testing::TempDir dir;
  const auto tok = rewards::testing::make_judge_tokenizer(dir.path() / "tok");
  models::Transformer prm(rewards::testing::tiny_for(*tok));
  models::testing::randomize(prm, 9);
  rewards::testing::save_with_tokenizer(prm, dir.path() / "prm", dir.path() / "tok");

  // The PRM judge cuts steps at "+" tokens of the policy's tokenizer (the judge tokenizer here).
  const std::string yaml = "reward:\n  judges:\n    - {name: prm, type: prm, params: {path: " +
                           (dir.path() / "prm").string() +
                           ", robustness_suite: none, delimiter: '+'}}\n"
                           "  components:\n    - {scheme: prm, params: {dense: true}}\n";
  rewards::JudgeContext jc;
  jc.policy_tokenizer = tok.get();
  auto reward = rewards::build_composite_reward(rewards::testing::read_section(yaml), registries().rewards, "", jc);

  // Same first step "3 +", middle step "4 +" vs "5 +", same last step and final answer "1 = 8".
  rewards::RewardInput in;
  in.prompts = {"Question: What is 3 + 4 + 1?", "Question: What is 3 + 4 + 1?"};
  in.responses = {"3 + 4 + 1 = 8", "3 + 5 + 1 = 8"};
  in.group_ids = torch::tensor({0, 0}, torch::kLong);
  std::vector<std::vector<int64_t>> ids;
  for (const auto& r : in.responses) ids.push_back(tok->encode(r, /*add_special=*/false));
  ASSERT_EQ(ids[0].size(), ids[1].size());
  const int64_t t = static_cast<int64_t>(ids[0].size());
  in.response_tokens = torch::stack({torch::tensor(ids[0]), torch::tensor(ids[1])});
  in.response_mask = torch::ones({2, t}, torch::kBool);
  in.response_lengths = torch::full({2}, t, torch::kLong);
  const auto out = reward->score(in);
  ASSERT_TRUE(out.token_rewards.defined());
  ASSERT_EQ(out.token_rewards.sizes(), (torch::IntArrayRef{2, t}));

  // The step ends: the tokens holding "+", then the last token.
  std::vector<int64_t> ends;
  for (int64_t k = 0; k < t; ++k)
    if (tok->id_to_bytes(ids[0][static_cast<size_t>(k)]).find('+') != std::string::npos) ends.push_back(k);
  ASSERT_EQ(ends.size(), 2u);
  ends.push_back(t - 1);
  for (int64_t r = 0; r < 2; ++r)
    for (int64_t k = 0; k < t; ++k)
      if (std::find(ends.begin(), ends.end(), k) == ends.end()) {
        EXPECT_EQ(out.token_rewards[r][k].item<float>(), 0.0f) << "row " << r << " token " << k;
      }
  // The shared first step scores the same (up to the rounding of BLAS kernels that may split the
  // two rows of one batch differently); the differing middle step does not.
  EXPECT_NEAR(out.token_rewards[0][ends[0]].item<float>(), out.token_rewards[1][ends[0]].item<float>(), 1e-5);
  EXPECT_GT(std::abs(out.token_rewards[0][ends[1]].item<float>() - out.token_rewards[1][ends[1]].item<float>()), 1e-3);

  // Token credit with returns-to-go (REINFORCE++): the rows' advantages differ on the tokens up to
  // the middle step, where their step scores differ, though their outcomes are the same.
  credit::AdvantageInputs ain;
  ain.token_rewards = out.token_rewards;
  ain.response_mask = in.response_mask.to(torch::kFloat);
  ain.group_ids = in.group_ids;
  config::AdvantageSection sec;
  sec.estimator = "reinforce_pp";
  const auto adv = registries().estimators.get("reinforce_pp").fn(ain, credit::advantage_options_from(sec)).advantages;
  ASSERT_EQ(adv.sizes(), (torch::IntArrayRef{2, t}));
  EXPECT_GT((adv[0] - adv[1]).abs().slice(0, 0, ends[1] + 1).min().item<float>(), 1e-6f);
}

}  // namespace
}  // namespace keel::loop
