// Tests of gspo (trainer/learner/gspo_loss.cpp): spec §2.4 worked example and the sequence-level
// gradient. Loop reference, finite differences and micro-batch invariance are in policy_loss_test.cpp.
#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/trainer/learner/loss_test_util.h"
#include "trainer/learner/policy_loss.h"

namespace keel::learner {
namespace {

PolicyLossInputs three_tokens(double a) {
  // token log-ratios [0.3, 0.1, −0.1] → log s = 0.3/3 = 0.1, s = e^0.1 = 1.105171
  PolicyLossInputs in;
  in.logp = torch::tensor({{-1.0, -2.0, -0.5}}, torch::kDouble).requires_grad_(true);
  in.logp_old = in.logp.detach() - torch::tensor({{0.3, 0.1, -0.1}}, torch::kDouble);
  in.advantages = torch::full({1, 3}, a, torch::kDouble);
  in.response_mask = torch::ones({1, 3}, torch::kDouble);
  in.agg = AggContext::from_mask(in.response_mask);
  return in;
}

TEST(GspoLoss, SpecWorkedExample) {
  PolicyLossOptions o;
  o.clip_low = 3e-4;
  o.clip_high = 4e-4;
  o.agg.mode = AggMode::kTokenMean;  // ignored: GSPO forces seq-mean-token-mean
  // A = +1: every token −min(1.105171, 1.0004) = −1.0004, clipped → zero gradient
  PolicyLossInputs pos = three_tokens(1.0);
  const auto out_pos = gspo_loss(pos, o);
  EXPECT_NEAR(out_pos.loss.item<double>(), -1.0004, 1e-4);
  EXPECT_TRUE(torch::autograd::grad({out_pos.loss}, {pos.logp})[0].eq(0).all().item<bool>());
  EXPECT_NEAR(out_pos.metrics.at("actor/pg_clipfrac"), 1.0, 1e-12);
  // A = −1: L = 1.105171 unclipped; dL/dlogp_t = (1/3)·(−A)·s = 0.368390 on each token (= A·∇s_n)
  PolicyLossInputs neg = three_tokens(-1.0);
  const auto out_neg = gspo_loss(neg, o);
  EXPECT_NEAR(out_neg.loss.item<double>(), 1.105171, 1e-4);
  const torch::Tensor g = torch::autograd::grad({out_neg.loss}, {neg.logp})[0];
  for (int64_t t = 0; t < 3; ++t) EXPECT_NEAR(g[0][t].item<double>(), std::exp(0.1) / 3, 1e-9);
  EXPECT_EQ(out_neg.metrics.at("actor/pg_clipfrac"), 0.0);
}

TEST(GspoLoss, ForcedSeqMeanTokenMeanWeighsSequencesEqually) {
  // Row 0 has 3 valid tokens, row 1 one; both unclipped with A = −1 (wide clip):
  // L = (s_0 + s_1)/2 regardless of the configured mode.
  PolicyLossOptions o;
  o.clip_low = 0.9;
  o.clip_high = 10;
  PolicyLossInputs in;
  in.logp = torch::tensor({{-1.0, -1.0, -1.0}, {-1.0, 0.0, 0.0}}, torch::kDouble).requires_grad_(true);
  in.logp_old = torch::tensor({{-1.3, -1.1, -0.9}, {-1.2, 5.0, 5.0}}, torch::kDouble);
  in.advantages = -torch::ones({2, 3}, torch::kDouble);
  in.response_mask = torch::tensor({{1.0, 1.0, 1.0}, {1.0, 0.0, 0.0}}, torch::kDouble);
  in.agg = AggContext::from_mask(in.response_mask);
  for (AggMode mode : {AggMode::kTokenMean, AggMode::kSeqMeanTokenSum}) {
    o.agg.mode = mode;
    EXPECT_NEAR(gspo_loss(in, o).loss.item<double>(), (std::exp(0.1) + std::exp(0.2)) / 2, 1e-12);
  }
}

}  // namespace
}  // namespace keel::learner
