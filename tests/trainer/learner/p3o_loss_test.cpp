// Tests of p3o_v1 / p3o_v2 (trainer/learner/p3o_loss.cpp): spec §7 worked example and hand cases.
// Loop reference, finite differences and micro-batch invariance are in policy_loss_test.cpp.
#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/trainer/learner/loss_test_util.h"
#include "trainer/learner/policy_loss.h"

namespace keel::learner {
namespace {

// One pair, two tokens per response; sequence log-ratios log ρ1, log ρ2 split over the tokens.
PolicyLossInputs pair(double a1, double a2, double rho1, double rho2) {
  PolicyLossInputs in;
  in.logp = torch::tensor({{-1.0, -2.0}, {-0.5, -1.5}}, torch::kDouble).requires_grad_(true);
  const torch::Tensor lr = torch::tensor({{std::log(rho1) * 0.25, std::log(rho1) * 0.75},
                                          {std::log(rho2) * 0.5, std::log(rho2) * 0.5}},
                                         torch::kDouble);
  in.logp_old = in.logp.detach() - lr;
  in.advantages = torch::tensor({{a1, a1}, {a2, a2}}, torch::kDouble);
  in.response_mask = torch::ones({2, 2}, torch::kDouble);
  in.group_ids = torch::tensor({7L, 7L});
  in.agg = AggContext::from_mask(in.response_mask);
  return in;
}

TEST(P3oLoss, SpecWorkedExampleV1) {
  // r̃ = (1.0, 0.2) → A = (+0.4, −0.4); ρ1 = 1.3, ρ2 = 0.9, ε = 0.2:
  // term1 = min(0.52, 0.48) = 0.48, term2 = min(−0.36, −0.36) = −0.36 → L = −0.12
  PolicyLossInputs in = pair(0.4, -0.4, 1.3, 0.9);
  const auto out = p3o_v1_loss(in, PolicyLossOptions{});
  EXPECT_NEAR(out.loss.item<double>(), -0.12, 1e-4);
  EXPECT_NEAR(out.metrics.at("actor/pg_clipfrac"), 0.5, 1e-12);  // response 1 clipped
  // gradient: response 1 clipped (0); response 2: d/dlogp_t of −ρ2·A2 = 0.4·0.9 = 0.36 per token
  const torch::Tensor g = torch::autograd::grad({out.loss}, {in.logp})[0];
  EXPECT_TRUE(g[0].eq(0).all().item<bool>());
  EXPECT_NEAR(g[1][0].item<double>(), 0.36, 1e-9);
  EXPECT_NEAR(g[1][1].item<double>(), 0.36, 1e-9);
}

TEST(P3oLoss, JointClippingV2HandExample) {
  // Same pair: ρ12 = 1.3/0.9 = 1.444444, d = δ/2 = (0.4 − (−0.4))·(1/2) = 0.4:
  // −min(1.444444·0.4, 1.2·0.4) = −0.48 (clipped → zero gradient)
  PolicyLossInputs in = pair(0.4, -0.4, 1.3, 0.9);
  const auto out = p3o_v2_loss(in, PolicyLossOptions{});
  EXPECT_NEAR(out.loss.item<double>(), -0.48, 1e-12);
  EXPECT_TRUE(torch::autograd::grad({out.loss}, {in.logp})[0].eq(0).all().item<bool>());
  // ρ1 = 1.0, ρ2 = 1.1 → ρ12 = 0.909091 inside the clip range: L = −0.909091·0.4 = −0.363636;
  // dL/dlogp of response 1 tokens = −ρ12·d = −0.363636, of response 2 tokens = +0.363636
  PolicyLossInputs in2 = pair(0.4, -0.4, 1.0, 1.1);
  const auto out2 = p3o_v2_loss(in2, PolicyLossOptions{});
  EXPECT_NEAR(out2.loss.item<double>(), -0.4 / 1.1, 1e-12);
  const torch::Tensor g = torch::autograd::grad({out2.loss}, {in2.logp})[0];
  EXPECT_NEAR(g[0][0].item<double>(), -0.4 / 1.1, 1e-12);
  EXPECT_NEAR(g[1][1].item<double>(), 0.4 / 1.1, 1e-12);
}

TEST(P3oLoss, ZeroMarginGivesNoSignal) {
  PolicyLossInputs in = pair(0.0, 0.0, 1.3, 0.7);
  for (auto* fn : {&p3o_v1_loss, &p3o_v2_loss}) {
    const auto out = (*fn)(in, PolicyLossOptions{});
    EXPECT_EQ(out.loss.item<double>(), 0.0);
    EXPECT_TRUE(torch::autograd::grad({out.loss}, {in.logp})[0].eq(0).all().item<bool>());
  }
}

TEST(P3oLoss, V2NeedsGroupIds) {
  PolicyLossInputs in = pair(0.4, -0.4, 1.0, 1.0);
  in.group_ids = torch::Tensor();
  EXPECT_THROW(p3o_v2_loss(in, PolicyLossOptions{}), c10::Error);
}

TEST(P3oLoss, SequenceLogRatioIsClamped) {
  // Σ log-ratio = 50 → clamped to 20; A > 0 so clip(ρ)·A = 1.2·0.4 is the min: −0.48 − (−0.4·1) ...
  // response 2 has ρ = 1, A = −0.4: −min(−0.4, −0.4) = 0.4 → L = (−0.48 + 0.4)/1 = −0.08, finite.
  PolicyLossInputs in = pair(0.4, -0.4, std::exp(50.0), 1.0);
  EXPECT_NEAR(p3o_v1_loss(in, PolicyLossOptions{}).loss.item<double>(), -0.08, 1e-12);
}

}  // namespace
}  // namespace keel::learner
