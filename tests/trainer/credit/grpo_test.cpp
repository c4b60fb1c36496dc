// Tests of the GRPO estimator (spec §2.1): worked example, edge cases, loop reference.
#include "trainer/credit/grpo.h"

#include <gtest/gtest.h>

#include "tests/trainer/credit/reference_estimators.h"

namespace keel::credit {
namespace {

using namespace keel::credit::testing;

TEST(Grpo, SpecWorkedExample) {
  // Group [1,0,0,1]: mean 0.5, unbiased std sqrt(4·0.25/3) = 0.577350 → ±0.5/0.577351 = ±0.866024.
  // Group [1,1,1,1]: std 0 → numerator 0 → all 0.
  const Mat m(8, Vec{1, 1});
  const Vec r{1, 0, 0, 1, 1, 1, 1, 1};
  auto in = inputs(outcome_at_last(r, m), m, {0, 0, 0, 0, 1, 1, 1, 1});
  const auto out = advantage_grpo(in, AdvantageOptions{});
  const double a = 0.866024;
  EXPECT_TRUE(close(out.advantages, Mat{{a, a}, {-a, -a}, {-a, -a}, {a, a}, {0, 0}, {0, 0}, {0, 0}, {0, 0}}));
  // TRL eps = 1e-4 → 0.5/(0.577350+1e-4) = ±0.865875.
  AdvantageOptions trl;
  trl.eps = 1e-4;
  EXPECT_NEAR(advantage_grpo(in, trl).advantages[0][0].item<double>(), 0.865875, 1e-6);
}

TEST(Grpo, EqualRewardsGiveExactlyZeroInFloat32AndFloat64) {
  // Issue 16: eight float32 0.7s gave +0.056 on every row (eight −0.3s: −0.029), because a float32
  // mean left std ≈ 1e-8 and (R − mean)/(std + ε) blew the rounding error up. Spec §2.1: std = 0 →
  // a = 0. Also 0.1 × 3 in float64, whose float64 sum is inexact.
  for (auto dt : {torch::kFloat, torch::kDouble}) {
    for (auto [value, k] : std::vector<std::pair<double, int>>{{0.7, 8}, {-0.3, 8}, {0.1, 3}, {0.7, 6}}) {
      const Mat m(static_cast<size_t>(k), Vec{1, 1});
      auto in = inputs(outcome_at_last(Vec(static_cast<size_t>(k), value), m), m, std::vector<int64_t>(static_cast<size_t>(k), 5));
      in.token_rewards = in.token_rewards.to(dt);
      for (bool norm : {true, false}) {
        AdvantageOptions o;
        o.norm_by_std = norm;
        const auto out = advantage_grpo(in, o);
        EXPECT_EQ(out.advantages.scalar_type(), dt);
        EXPECT_EQ(out.advantages.abs().max().item<double>(), 0.0) << dt << " " << value << " x" << k;
      }
    }
  }
}

TEST(Grpo, SingletonGroupPolicies) {
  const Mat m{{1, 1}, {1, 0}, {1, 1}};
  const auto in = inputs(outcome_at_last({1, 0, 2}, m), m, {4, 4, 9});
  EXPECT_THROW(advantage_grpo(in, AdvantageOptions{}), c10::Error);  // default: error
  AdvantageOptions raw;
  raw.singleton = "raw";  // verl: mean 0, std 1 → 2/(1+1e-6)
  EXPECT_TRUE(close(advantage_grpo(in, raw).advantages.select(0, 2), Vec{2, 2}));
  AdvantageOptions zero;
  zero.singleton = "zero";  // TRL: 0
  EXPECT_TRUE(close(advantage_grpo(in, zero).advantages.select(0, 2), Vec{0, 0}));
}

TEST(Grpo, UnscorableRowsAreExcludedAndZero) {
  // Group [1, NaN, 0, 0.5]: stats over 1, 0, 0.5 → mean 0.5, std 0.5 → [1, 0, −1, 0].
  const Mat m(4, Vec{1});
  auto in = inputs({{1}, {NAN}, {0}, {0.5}}, m, {3, 3, 3, 3});
  EXPECT_TRUE(close(advantage_grpo(in, AdvantageOptions{}).advantages, Mat{{1}, {0}, {-1}, {0}}));
}

TEST(Grpo, BatchStdScopeKeepsGroupMean) {
  // Rewards [1,0 | 3,3]: batch std of [1,0,3,3] = sqrt(((−.75)²+(−1.75)²+1.25²·2)/3) = 1.5; group means .5 and 3.
  const Mat m(4, Vec{1});
  auto in = inputs({{1}, {0}, {3}, {3}}, m, {0, 0, 1, 1});
  AdvantageOptions o;
  o.grpo.std_scope = "batch";
  o.eps = 0;
  EXPECT_TRUE(close(advantage_grpo(in, o).advantages, Mat{{1.0 / 3}, {-1.0 / 3}, {0}, {0}}));
}

TEST(Grpo, RejectsKlRewards) {
  const Mat m(2, Vec{1});
  auto in = inputs({{1}, {0}}, m, {0, 0});
  in.kl_rewards = mat({{0.1}, {0.1}});
  EXPECT_THROW(advantage_grpo(in, AdvantageOptions{}), c10::Error);
}

TEST(Grpo, MatchesLoopReferenceOnRandomBatches) {
  for (uint32_t seed = 0; seed < 80; ++seed) {
    const auto b = random_batch(seed, /*allow_singletons=*/true, /*binary=*/seed % 2 == 0, /*dense=*/seed % 3 == 0);
    for (const std::string singleton : {"raw", "zero"}) {
      for (bool norm : {true, false}) {
        AdvantageOptions o;
        o.singleton = singleton;
        o.norm_by_std = norm;
        const auto out = advantage_grpo(b.in(), o);
        const auto want = ref::broadcast(ref::grpo(ref::row_sums(b.r_tok), b.gid, o.eps, norm, singleton), b.mask);
        ASSERT_TRUE(close(out.advantages, want, 1e-9)) << "seed " << seed << " " << singleton;
        ASSERT_TRUE(close(out.returns, want, 1e-9));
      }
    }
    bool has_single = false;
    for (const auto& [g, rows] : ref::groups_of(b.gid)) has_single |= rows.size() == 1;
    if (has_single) EXPECT_THROW(advantage_grpo(b.in(), AdvantageOptions{}), c10::Error);
  }
}

}  // namespace
}  // namespace keel::credit
