// Tests of ppo_clip (trainer/learner/ppo_clip_loss.cpp): spec §1.2 and §2.3 (clip-higher) worked
// examples, gradients of clipped / unclipped tokens, metrics. Loop reference, finite differences
// and micro-batch invariance for every loss are in policy_loss_test.cpp.
#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/trainer/learner/loss_test_util.h"
#include "trainer/learner/policy_loss.h"

namespace keel::learner {
namespace {

// One valid token with advantage `a` and ratio `ratio` (logp_old = 0, logp = log ratio).
struct OneToken {
  PolicyLossInputs in;
  OneToken(double a, double ratio) {
    in.logp = torch::full({1, 1}, std::log(ratio), torch::kDouble).requires_grad_(true);
    in.logp_old = torch::zeros({1, 1}, torch::kDouble);
    in.advantages = torch::full({1, 1}, a, torch::kDouble);
    in.response_mask = torch::ones({1, 1}, torch::kDouble);
    in.agg = AggContext::from_mask(in.response_mask);
  }
  // (loss, dL/dlogp)
  std::pair<double, double> run(const PolicyLossOptions& o) {
    const auto out = ppo_clip_loss(in, o);
    return {out.loss.item<double>(), torch::autograd::grad({out.loss}, {in.logp})[0].item<double>()};
  }
};

TEST(PpoClipLoss, SpecWorkedExamples) {
  PolicyLossOptions o;  // ε = 0.2, c = 3
  // A = +1, ρ = 1.5: L = max(−1.5, −1.2) = −1.2, clipped → zero gradient
  auto [l1, g1] = OneToken(1.0, 1.5).run(o);
  EXPECT_NEAR(l1, -1.2, 1e-4);
  EXPECT_EQ(g1, 0.0);
  // A = −1, ρ = 0.5: L = max(0.5, 0.8) = 0.8, clipped
  auto [l2, g2] = OneToken(-1.0, 0.5).run(o);
  EXPECT_NEAR(l2, 0.8, 1e-4);
  EXPECT_EQ(g2, 0.0);
  // A = −1, ρ = 5: Lc = max(5, 1.2) = 5; dual-clip min(5, 3) = 3 (constant → zero gradient)
  auto [l3, g3] = OneToken(-1.0, 5.0).run(o);
  EXPECT_NEAR(l3, 3.0, 1e-4);
  EXPECT_EQ(g3, 0.0);
  // same without dual-clip: 5, gradient dL/dlogp = −A·ρ = 5
  o.dual_clip_c = 0;
  auto [l4, g4] = OneToken(-1.0, 5.0).run(o);
  EXPECT_NEAR(l4, 5.0, 1e-9);
  EXPECT_NEAR(g4, 5.0, 1e-9);
}

TEST(PpoClipLoss, SpecClipHigherExample) {
  // DAPO clip-higher, A = +1, ρ = 1.25: ε_high 0.28 → L = −1.25 unclipped, dL/dlogp = −A·ρ = −1.25;
  // symmetric 0.2 → −1.2, clipped, zero gradient.
  PolicyLossOptions o;
  o.clip_high = 0.28;
  auto [l1, g1] = OneToken(1.0, 1.25).run(o);
  EXPECT_NEAR(l1, -1.25, 1e-4);
  EXPECT_NEAR(g1, -1.25, 1e-9);
  o.clip_high = 0.2;
  auto [l2, g2] = OneToken(1.0, 1.25).run(o);
  EXPECT_NEAR(l2, -1.2, 1e-4);
  EXPECT_EQ(g2, 0.0);
}

TEST(PpoClipLoss, ZeroAdvantageGivesZeroLossAndGradient) {
  auto [l, g] = OneToken(0.0, 1.7).run(PolicyLossOptions{});
  EXPECT_EQ(l, 0.0);
  EXPECT_EQ(g, 0.0);
}

TEST(PpoClipLoss, RatioLogClampPreventsOverflow) {
  // log ratio 100 → clamped to 20; A > 0: L = max(−e^20, −1.2) = −1.2 (finite)
  PolicyLossInputs in = OneToken(1.0, 1.0).in;
  in.logp = torch::full({1, 1}, 100.0, torch::kDouble).requires_grad_(true);
  const auto out = ppo_clip_loss(in, PolicyLossOptions{});
  EXPECT_NEAR(out.loss.item<double>(), -1.2, 1e-12);
  EXPECT_NEAR(out.metrics.at("actor/ppo_kl"), -20.0, 1e-12);
}

TEST(PpoClipLoss, MetricsHandExample) {
  // Four valid tokens (ε = 0.2, c = 3), one masked token that would count as clipped:
  //  (A=+1, ρ=1.5): L2 = −1.2 > L1 = −1.5 → clipped;
  //  (A=−1, ρ=5):   L1 = 5 > L2 = 1.2 → not clipped, but Lc = 5 > −A·c = 3 → dual-clipped (lower);
  //  (A=+1, ρ=1.0) and (A=−1, ρ=0.9): inside the range, neither.
  PolicyLossInputs in;
  in.logp = torch::log(torch::tensor({{1.5, 5.0, 1.0}, {0.9, 3.0, 1.0}}, torch::kDouble)).requires_grad_(true);
  in.logp_old = torch::zeros({2, 3}, torch::kDouble);
  in.advantages = torch::tensor({{1.0, -1.0, 1.0}, {-1.0, 1.0, 1.0}}, torch::kDouble);
  in.response_mask = torch::tensor({{1.0, 1.0, 1.0}, {1.0, 0.0, 0.0}}, torch::kDouble);
  in.agg = AggContext::from_mask(in.response_mask);
  const auto out = ppo_clip_loss(in, PolicyLossOptions{});
  EXPECT_NEAR(out.metrics.at("actor/pg_clipfrac"), 0.25, 1e-12);        // 1 of 4 (verl: [L2 > L1])
  EXPECT_NEAR(out.metrics.at("actor/pg_clipfrac_lower"), 0.25, 1e-12);  // 1 of 4
  // ppo_kl = mean(logp_old − logp) = −(ln1.5 + ln5 + 0 + ln0.9)/4
  EXPECT_NEAR(out.metrics.at("actor/ppo_kl"), -(std::log(1.5) + std::log(5.0) + std::log(0.9)) / 4, 1e-12);
  // token-mean: (−1.2 + 3 + (−1) + 0.9)/4 = 0.425
  EXPECT_NEAR(out.loss.item<double>(), 0.425, 1e-12);
  EXPECT_NEAR(out.metrics.at("actor/pg_loss"), 0.425, 1e-12);
}

TEST(PpoClipLoss, RejectsBadShapesAndDualClipConstant) {
  PolicyLossInputs in = OneToken(1.0, 1.0).in;
  in.advantages = torch::zeros({2, 1}, torch::kDouble);
  EXPECT_THROW(ppo_clip_loss(in, PolicyLossOptions{}), c10::Error);
  PolicyLossOptions o;
  o.dual_clip_c = 0.5;
  EXPECT_THROW(ppo_clip_loss(OneToken(1.0, 1.0).in, o), c10::Error);
  o = PolicyLossOptions{};
  o.kl_in_loss = true;  // no logp_ref
  EXPECT_THROW(ppo_clip_loss(OneToken(1.0, 1.0).in, o), c10::Error);
}

}  // namespace
}  // namespace keel::learner
