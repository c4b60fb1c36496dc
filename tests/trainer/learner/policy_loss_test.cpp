// Tests of the policy-loss interface (trainer/learner/policy_loss.{h,cpp}) across every registered
// loss: registry contents, options from config, loop references over random batches (with KL and
// entropy terms, every aggregation mode), finite-difference gradients, and micro-batch /
// data-parallel invariance of the gradient.
#include "trainer/learner/policy_loss.h"

#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/trainer/learner/loss_test_util.h"
#include "tests/trainer/learner/policy_loss_reference.h"
#include "base/error.h"
#include "trainer/config/credit_config.h"

namespace keel::learner {
namespace {

constexpr AggMode kModes[] = {AggMode::kTokenMean, AggMode::kSeqMeanTokenSum, AggMode::kSeqMeanTokenMean,
                              AggMode::kSeqMeanTokenSumNorm};
const char* const kLosses[] = {"ppo_clip", "gspo", "p3o_v1", "p3o_v2", "opmd"};

PolicyLossRegistry builtin() {
  PolicyLossRegistry r("policy loss");
  register_builtin_policy_losses(r);
  return r;
}

double reference(const std::string& name, const PolicyLossInputs& in, const PolicyLossOptions& o) {
  const auto r = testing::ref_inputs(in);
  if (name == "ppo_clip") return testing::ref_ppo_clip(r, o);
  if (name == "gspo") return testing::ref_gspo(r, o);
  if (name == "p3o_v1") return testing::ref_p3o_v1(r, o, in.agg.seqs);
  if (name == "p3o_v2") return testing::ref_p3o_v2(r, o, in.agg.seqs);
  if (name == "opmd") return testing::ref_opmd(r, o);
  ADD_FAILURE() << "no reference for " << name;
  return 0;
}

PolicyLossInputs inputs_of(const testing::RandBatch& b, const torch::Tensor& logp) {
  PolicyLossInputs in;
  in.logp = logp;
  in.logp_old = b.logp_old;
  in.advantages = b.adv;
  in.response_mask = b.mask;
  in.logp_ref = b.logp_ref;
  in.entropy = b.entropy;
  in.group_ids = b.group_ids;
  in.agg = AggContext::from_mask(b.mask);
  return in;
}

PolicyLossInputs rows(const PolicyLossInputs& in, int64_t s, int64_t e, const torch::Tensor& logp_leaf) {
  PolicyLossInputs out = in;
  out.logp = logp_leaf.slice(0, s, e);
  out.logp_old = in.logp_old.slice(0, s, e);
  out.advantages = in.advantages.slice(0, s, e);
  out.response_mask = in.response_mask.slice(0, s, e);
  out.logp_ref = in.logp_ref.slice(0, s, e);
  out.entropy = in.entropy.slice(0, s, e);
  out.group_ids = in.group_ids.slice(0, s, e);
  return out;
}

// A spread of options chosen by seed: every mode, KL in loss on/off with every estimator, entropy
// bonus on/off, asymmetric clip, dual-clip on/off.
PolicyLossOptions options_for(uint64_t seed) {
  PolicyLossOptions o;
  o.agg.mode = kModes[seed % 4];
  o.agg.norm_len = 3.0 + static_cast<double>(seed % 3);
  o.kl_in_loss = (seed / 4) % 2 == 1;
  o.kl_estimator = static_cast<KlEstimator>((seed / 8) % 7);  // k1 … k3+, abs
  o.kl_coef = 0.05;
  o.entropy_coef = seed % 3 == 0 ? 0.0 : 0.01;
  o.clip_low = 0.2;
  o.clip_high = seed % 2 ? 0.28 : 0.2;
  o.dual_clip_c = seed % 5 == 0 ? 0.0 : 3.0;
  return o;
}

TEST(PolicyLossRegistry, HasEveryBuiltinWithDescription) {
  const auto r = builtin();
  EXPECT_EQ(r.names(), (std::vector<std::string>{"gspo", "opmd", "p3o_v1", "p3o_v2", "ppo_clip"}));
  for (const auto& n : r.names()) EXPECT_FALSE(r.get(n).description.empty()) << n;
  EXPECT_THROW(r.get("ppo"), keel::Error);
  PolicyLossRegistry again("policy loss");
  register_builtin_policy_losses(again);
  EXPECT_THROW(register_builtin_policy_losses(again), keel::Error);
}

TEST(PolicyLossOptions, FromConfigSections) {
  config::LearnerSection l;
  l.clip_low = 0.1;
  l.clip_high = 0.28;
  l.dual_clip_c = 0;
  l.loss_agg = "seq-mean-token-sum-norm";
  l.agg_norm_len = 1024;
  l.entropy_coef = 0.01;
  config::KlSection k;
  k.in_loss = true;
  k.estimator = "k3+";
  k.coef = 0.04;
  const PolicyLossOptions o = policy_loss_options(l, k);
  EXPECT_EQ(o.clip_low, 0.1);
  EXPECT_EQ(o.clip_high, 0.28);
  EXPECT_EQ(o.dual_clip_c, 0);
  EXPECT_EQ(o.agg.mode, AggMode::kSeqMeanTokenSumNorm);
  EXPECT_EQ(o.agg.norm_len, 1024);
  EXPECT_EQ(o.entropy_coef, 0.01);
  EXPECT_TRUE(o.kl_in_loss);
  EXPECT_EQ(o.kl_estimator, KlEstimator::kK3Plus);
  EXPECT_EQ(o.kl_coef, 0.04);
  l.loss_agg = "mean";
  EXPECT_THROW(policy_loss_options(l, k), keel::Error);
}

TEST(PolicyLoss, KlAndEntropyTermsHandExample) {
  // ppo_clip with A = 0 (pg term 0), one row of two tokens, token-mean:
  // KL k1 = logp − logp_ref = [0.5, −0.1] → mean 0.2; β = 0.1 → +0.02
  // entropy [1.0, 3.0] → mean 2.0; c = 0.01 → −0.02.  Total 0.
  PolicyLossInputs in;
  in.logp = torch::tensor({{-1.0, -2.0}}, torch::kDouble).requires_grad_(true);
  in.logp_old = in.logp.detach();
  in.logp_ref = torch::tensor({{-1.5, -1.9}}, torch::kDouble);
  in.advantages = torch::zeros({1, 2}, torch::kDouble);
  in.response_mask = torch::ones({1, 2}, torch::kDouble);
  in.entropy = torch::tensor({{1.0, 3.0}}, torch::kDouble);
  in.agg = AggContext::from_mask(in.response_mask);
  PolicyLossOptions o;
  o.kl_in_loss = true;
  o.kl_estimator = KlEstimator::kK1;
  o.kl_coef = 0.1;
  o.entropy_coef = 0.01;
  const auto out = ppo_clip_loss(in, o);
  EXPECT_NEAR(out.loss.item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(out.metrics.at("actor/kl_loss"), 0.2, 1e-12);
  EXPECT_NEAR(out.metrics.at("actor/entropy_loss"), 2.0, 1e-12);
  EXPECT_NEAR(out.metrics.at("actor/entropy"), 2.0, 1e-12);
  EXPECT_EQ(out.metrics.at("actor/pg_loss"), 0.0);
  // gradient of β·mean(k1) = 0.1/2 per token
  const torch::Tensor g = torch::autograd::grad({out.loss}, {in.logp})[0];
  EXPECT_NEAR(g[0][0].item<double>(), 0.05, 1e-12);
  EXPECT_NEAR(g[0][1].item<double>(), 0.05, 1e-12);
  o.entropy_coef = 0.01;
  in.entropy = torch::Tensor();
  EXPECT_THROW(ppo_clip_loss(in, o), c10::Error);  // entropy bonus without entropy
}

TEST(PolicyLoss, EveryLossMatchesItsLoopReference) {
  const auto reg = builtin();
  for (const char* name : kLosses) {
    for (uint64_t seed = 0; seed < 60; ++seed) {
      const auto b = testing::rand_batch(seed, {/*seq_advantages=*/seed % 2 == 0});
      const PolicyLossOptions o = options_for(seed);
      const PolicyLossInputs in = inputs_of(b, b.logp);
      const auto out = reg.get(name).fn(in, o);
      const double got = out.loss.item<double>();
      ASSERT_TRUE(std::isfinite(got)) << name << " seed " << seed;
      EXPECT_NEAR(got, reference(name, in, o), 1e-9 * (1 + std::abs(got))) << name << " seed " << seed;
      EXPECT_TRUE(out.metrics.count("actor/pg_loss")) << name;
    }
  }
}

TEST(PolicyLoss, EveryLossGradientMatchesFiniteDifferences) {
  const auto reg = builtin();
  for (const char* name : kLosses) {
    for (uint64_t seed = 0; seed < 12; ++seed) {
      if (seed % 10 == 2) continue;  // the ±30 log-ratio edge case is flat (clamped): covered by the loop test
      // GSPO's per-token form equals the sequence gradient only for sequence-level advantages (§2.4).
      const auto b = testing::rand_batch(seed, {/*seq_advantages=*/true});
      const PolicyLossOptions o = options_for(seed);
      testing::expect_grad_matches_fd(
          [&](const torch::Tensor& logp) { return reg.get(name).fn(inputs_of(b, logp), o).loss; }, b.logp, 1e-6);
    }
  }
}

// For every loss and every aggregation mode: the gradient of one mini-batch equals the sum of the
// gradients of its micro-batches (each given the mini-batch's AggContext), and the same for a
// simulated 2-rank split whose per-rank counts are summed (the all-reduce of the counts).
TEST(PolicyLoss, MicroBatchAndTwoRankInvarianceForEveryLossAndMode) {
  const auto reg = builtin();
  for (const char* name : kLosses) {
    for (AggMode mode : kModes) {
      for (uint64_t seed = 0; seed < 12; ++seed) {
        const auto b = testing::rand_batch(seed, {/*seq_advantages=*/seed % 2 == 0});
        PolicyLossOptions o = options_for(seed);
        o.agg.mode = mode;
        const auto& fn = reg.get(name).fn;
        // p3o_v2 pairs within groups: splits follow group boundaries (documented requirement).
        const int64_t align = std::string(name) == "p3o_v2" ? b.group_size : 1;

        torch::Tensor leaf = b.logp.clone().requires_grad_(true);
        const PolicyLossInputs full = inputs_of(b, leaf);
        const auto full_out = fn(full, o);
        full_out.loss.backward();
        const torch::Tensor g_full = leaf.grad().clone();

        leaf.mutable_grad().zero_();
        double sum = 0;
        for (auto [s, e] : testing::uneven_split(b.n, 3, align)) {
          const auto out = fn(rows(full, s, e, leaf), o);
          out.loss.backward();
          sum += out.loss.item<double>();
        }
        EXPECT_NEAR(sum, full_out.loss.item<double>(), 1e-11 * (1 + std::abs(sum))) << name << " " << agg_mode_name(mode) << " " << seed;
        EXPECT_TRUE(torch::allclose(leaf.grad(), g_full, 1e-11, 1e-12))
            << name << " " << agg_mode_name(mode) << " seed " << seed;

        // 2 ranks × 2 micro-batches, counts all-reduced.
        const int64_t k = (b.n / align / 2) * align;
        const std::pair<int64_t, int64_t> ranks[2] = {{0, k}, {k, b.n}};
        AggCounts global;
        for (auto [s, e] : ranks)
          if (e > s) global += count_for_agg(b.mask.slice(0, s, e));
        PolicyLossInputs dp = full;
        dp.agg = AggContext::from_counts(global);
        leaf.mutable_grad().zero_();
        for (auto [s, e] : ranks)
          for (auto [ms, me] : testing::uneven_split(e - s, 2, align))
            if (me > ms) fn(rows(dp, s + ms, s + me, leaf), o).loss.backward();
        EXPECT_TRUE(torch::allclose(leaf.grad(), g_full, 1e-11, 1e-12))
            << "2-rank " << name << " " << agg_mode_name(mode) << " seed " << seed;
      }
    }
  }
}

TEST(PolicyLoss, FloatInputsWork) {
  const auto reg = builtin();
  const auto b = testing::rand_batch(5);
  PolicyLossInputs in = inputs_of(b, b.logp.to(torch::kFloat).requires_grad_(true));
  in.logp_old = in.logp_old.to(torch::kFloat);
  in.advantages = in.advantages.to(torch::kFloat);
  in.response_mask = in.response_mask.to(torch::kBool);
  PolicyLossOptions o = options_for(5);
  o.kl_in_loss = true;
  for (const char* name : kLosses) {
    const auto out = reg.get(name).fn(in, o);
    EXPECT_EQ(out.loss.scalar_type(), torch::kFloat) << name;
    const double want = reference(name, inputs_of(b, b.logp), o);
    EXPECT_NEAR(out.loss.item<double>(), want, 1e-4 * (1 + std::abs(want))) << name;
  }
}

}  // namespace
}  // namespace keel::learner
