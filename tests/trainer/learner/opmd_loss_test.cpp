// Tests of opmd (trainer/learner/opmd_loss.cpp): spec §5.4 hand example. Loop reference, finite
// differences and micro-batch invariance are in policy_loss_test.cpp.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "trainer/learner/policy_loss.h"

namespace keel::learner {
namespace {

TEST(OpmdLoss, HandExampleWithSpecAdvantages) {
  // Advantages from the spec §5.3 example row scores 1.0 and −0.375, one token each, logp −0.5, −1.0:
  // token-mean(−A·logp) = (0.5 − 0.375)/2 = 0.0625; /(1 + τ = 2) → 0.03125.
  // dL/dlogp = −A/(2 tokens · 2) = [−0.25, 0.09375].
  PolicyLossInputs in;
  in.logp = torch::tensor({{-0.5}, {-1.0}}, torch::kDouble).requires_grad_(true);
  in.advantages = torch::tensor({{1.0}, {-0.375}}, torch::kDouble);
  in.response_mask = torch::ones({2, 1}, torch::kDouble);
  in.agg = AggContext::from_mask(in.response_mask);  // logp_old omitted: opmd has no ratio
  const auto out = opmd_loss(in, PolicyLossOptions{});
  EXPECT_NEAR(out.loss.item<double>(), 0.03125, 1e-12);
  const torch::Tensor g = torch::autograd::grad({out.loss}, {in.logp})[0];
  EXPECT_NEAR(g[0][0].item<double>(), -0.25, 1e-12);
  EXPECT_NEAR(g[1][0].item<double>(), 0.09375, 1e-12);
  EXPECT_EQ(out.metrics.count("actor/ppo_kl"), 0u);
}

TEST(OpmdLoss, R3lRecipeWithK2KlLoss) {
  // R3L recipe: + 0.001·token-mean(k2). logp − logp_ref = [0.2, −0.4] → k2 = [0.02, 0.08], mean 0.05
  PolicyLossInputs in;
  in.logp = torch::tensor({{-0.5}, {-1.0}}, torch::kDouble).requires_grad_(true);
  in.logp_ref = torch::tensor({{-0.7}, {-0.6}}, torch::kDouble);
  in.advantages = torch::tensor({{1.0}, {-0.375}}, torch::kDouble);
  in.response_mask = torch::ones({2, 1}, torch::kDouble);
  in.agg = AggContext::from_mask(in.response_mask);
  PolicyLossOptions o;
  o.kl_in_loss = true;
  o.kl_estimator = KlEstimator::kK2;
  o.kl_coef = 0.001;
  const auto out = opmd_loss(in, o);
  EXPECT_NEAR(out.metrics.at("actor/kl_loss"), 0.05, 1e-12);
  EXPECT_NEAR(out.loss.item<double>(), 0.03125 + 0.001 * 0.05, 1e-12);
}

}  // namespace
}  // namespace keel::learner
