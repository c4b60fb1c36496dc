// Tests of the EPO-Safe cost channel (spec rewards.md B9, [interp]).
#include "rewards/schemes/epo_safe.h"

#include <gtest/gtest.h>

#include "tests/rewards/schemes/test_util.h"

namespace keel::rewards {
namespace {

using testing::dt;

TEST(EpoSafe, WorkedExample) {
  // R_task = 1, bits [0,1,0,1] -> C = 2, λ = 0.5 -> R_eff = 0.
  CostChannelOptions o;
  auto c = episode_cost(dt({0, 1, 0, 1}).view({1, 4}), {}, o);
  EXPECT_EQ(c.item<double>(), 2.0);
  EXPECT_NEAR(cost_penalized_reward(dt({1}), c, 0.5).item<double>(), 0.0, 1e-12);
  o.reduce = "mean";
  EXPECT_EQ(episode_cost(dt({0, 1, 0, 1}).view({1, 4}), torch::tensor({true, true, true, false}).view({1, 4}), o)
                .item<double>(),
            1.0 / 3.0);
}

TEST(EpoSafe, LagrangianUpdateAndRoundTrip) {
  CostChannelOptions o;
  o.lagrangian = true;
  o.lambda = 1.0;
  o.lr = 0.05;
  o.budget = 0.5;
  CostMultiplier m(o);
  EXPECT_NEAR(m.update(dt({2, 1})), 1.0 + 0.05 * (1.5 - 0.5), 1e-12);
  for (int i = 0; i < 100; ++i) m.update(dt({0, 0}));
  EXPECT_EQ(m.lambda(), 0.0);  // projected at 0
  m.update(dt({1.7}));
  StateDict st;
  m.save_state(st, "cost/danger/");
  CostMultiplier n(o);
  n.load_state(st, "cost/danger/");
  EXPECT_EQ(n.lambda(), m.lambda());
  CostChannelOptions fixed;
  CostMultiplier f(fixed);
  EXPECT_EQ(f.update(dt({5})), 1.0);  // fixed penalty never moves
}

TEST(EpoSafe, ReaderRejectsDuplicateChannels) {
  std::vector<CostChannelOptions> ch;
  EXPECT_TRUE(testing::read_yaml("  cost_channels:\n    - {name: danger, lambda: 0.5}\n", ch, read_cost_channels).empty());
  ASSERT_EQ(ch.size(), 1u);
  EXPECT_EQ(ch[0].lambda, 0.5);
  auto e = testing::read_yaml("  cost_channels:\n    - {name: d}\n    - {name: d}\n", ch, read_cost_channels);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_NE(e[0].find("duplicate cost channel 'd'"), std::string::npos);
}

}  // namespace
}  // namespace keel::rewards
