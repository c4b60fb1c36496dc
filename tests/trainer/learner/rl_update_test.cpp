// Tests of trainer/learner/rl_update.{h,cpp} through its KL-in-loss path: the estimator that
// kl.estimator names (PolicyLossOptions::kl_estimator) is the one the real update evaluates on
// the model's recomputed log-probs, reports as actor/kl_loss and follows with its gradient.
// A tiny random-init Transformer, the real sampler, ppo_clip with zero advantages (so the policy
// term is 0 and the step is the KL term's alone).
#include "trainer/learner/rl_update.h"

#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "models/generate.h"
#include "models/logprobs.h"
#include "models/transformer.h"
#include "tests/trainer/learner/tiny_policy.h"
#include "trainer/learner/kl.h"
#include "trainer/learner/policy_loss.h"

namespace keel::learner {
namespace {

models::Transformer tiny_model() { return testing::tiny_policy(3); }

/// 4 prompts × 2 samples of up to 3 tokens from the model; zero advantages; reference log-probs
/// = behaviour log-probs − d with d = +0.3 on even rows, −0.2 on odd rows, so Δ = logp − ref ≈ d.
rollout::RolloutBatch kl_batch(models::Transformer& m) {
  const std::vector<std::vector<int64_t>> prompts = {{2, 3, 4}, {2, 3, 4}, {7, 8}, {7, 8},
                                                     {9, 10, 11}, {9, 10, 11}, {6}, {6}};
  auto b = testing::sampled_batch(m, prompts, {0, 0, 1, 1, 2, 2, 3, 3}, /*max_new_tokens=*/3, /*seed=*/5);
  const at::Tensor d = torch::tensor({0.3f, -0.2f, 0.3f, -0.2f, 0.3f, -0.2f, 0.3f, -0.2f}).unsqueeze(1);
  b.ref_logprobs = b.old_logprobs - d * b.response_mask.to(torch::kFloat);
  b.advantages = torch::zeros_like(b.old_logprobs);
  b.loss_mask = b.response_mask;
  return b;
}

/// Token-mean over the mask of the estimator at Δ = d (the per-row offset above).
double expected_kl(KlEstimator est, const rollout::RolloutBatch& b) {
  const at::Tensor m = (b.response_mask != 0).to(torch::kDouble);
  const at::Tensor d = torch::tensor({0.3, -0.2, 0.3, -0.2, 0.3, -0.2, 0.3, -0.2}, torch::kDouble).unsqueeze(1) * m;
  at::Tensor kl;
  if (est == KlEstimator::kK1) kl = d;           // Δ
  else if (est == KlEstimator::kK2) kl = 0.5 * d * d;  // ½Δ²
  else kl = d.abs();                             // abs: |Δ|
  return ((kl * m).sum() / m.sum()).item<double>();
}

/// Token-mean |logp − ref| of the model now.
double mean_abs_delta(models::Transformer& m, const rollout::RolloutBatch& b) {
  torch::NoGradGuard ng;
  m.train(false);
  models::LogprobOptions lo;
  const auto lp = models::sequence_logprobs(m, b.prompt_ids, b.prompt_mask, b.response_ids, b.response_mask, lo);
  const at::Tensor mask = (b.response_mask != 0).to(torch::kDouble);
  const at::Tensor delta = (lp.logprobs.to(torch::kDouble) - b.ref_logprobs.to(torch::kDouble)).abs() * mask;
  return (delta.sum() / mask.sum()).item<double>();
}

TEST(RlUpdate, KlInLossEvaluatesTheConfiguredEstimatorAbsIncluded) {
  // The three estimators give three different actor/kl_loss values on the same batch (k1 mixes
  // signs: (0.3 − 0.2)/2 per token pair; k2 ½Δ²; abs |Δ|): the value reported is the named one's.
  for (KlEstimator est : {KlEstimator::kK1, KlEstimator::kK2, KlEstimator::kAbs}) {
    auto m = tiny_model();
    const auto b = kl_batch(m);
    ASSERT_GT(b.response_mask.sum().item<double>(), 0);
    RlUpdateOptions o;
    o.mini_batch_size = static_cast<int>(b.size());
    o.micro_batch_size = static_cast<int>(b.size() / 2);
    o.lr.lr = 1e-2;
    o.grad_clip = 0;
    o.loss.kl_in_loss = true;
    o.loss.kl_coef = 1.0;
    o.loss.kl_estimator = est;
    torch::optim::AdamW opt(m.parameters(), torch::optim::AdamWOptions(1e-2));
    NumericsGuard guard(3);
    int64_t step = 0;
    const auto res = rl_update(m, opt, b, ppo_clip_loss, o, guard, step);
    ASSERT_EQ(step, 1);
    // Log-probs recomputed by teacher forcing equal the sampler's up to float32 rounding.
    EXPECT_NEAR(res.metrics.at("actor/kl_loss"), expected_kl(est, b), 1e-4) << kl_estimator_name(est);
    EXPECT_NEAR(res.metrics.at("actor/pg_loss"), 0.0, 1e-12);
  }
}

TEST(RlUpdate, KlInLossAbsPullsThePolicyTowardsTheReference) {
  // With only the abs term, a few steps shrink the mean |logp − ref| (its gradient is sign(Δ)).
  auto m = tiny_model();
  const auto b = kl_batch(m);
  const double before = mean_abs_delta(m, b);
  RlUpdateOptions o;
  o.mini_batch_size = static_cast<int>(b.size());
  o.micro_batch_size = static_cast<int>(b.size());
  o.lr.lr = 1e-2;
  o.loss.kl_in_loss = true;
  o.loss.kl_coef = 1.0;
  o.loss.kl_estimator = KlEstimator::kAbs;
  torch::optim::AdamW opt(m.parameters(), torch::optim::AdamWOptions(1e-2));
  NumericsGuard guard(3);
  int64_t step = 0;
  for (int it = 0; it < 5; ++it) rl_update(m, opt, b, ppo_clip_loss, o, guard, step);
  const double after = mean_abs_delta(m, b);
  EXPECT_NEAR(before, expected_kl(KlEstimator::kAbs, b), 1e-4);
  EXPECT_LT(after, 0.8 * before) << "before " << before;
}

}  // namespace
}  // namespace keel::learner
