// Tests of REINFORCE++ and REINFORCE++-baseline (spec §3.2).
#include "trainer/credit/reinforce_pp.h"

#include <gtest/gtest.h>

#include "tests/trainer/credit/reference_estimators.h"

namespace keel::credit {
namespace {

using namespace keel::credit::testing;

TEST(ReinforcePp, SpecWorkedExample) {
  // β=0.5, KL [[.2,0],[0,.4]] → kl_rewards [[−.1,0],[0,−.2]]; outcomes [1,0] at the last token
  // → r_tok [[−.1,1],[0,−.2]] → returns (γ=1) [[.9,1],[−.2,−.2]]; mean .375 over 4 tokens,
  // Σ(x−μ)² = .275625+.390625+.330625·2 = 1.3275: unbiased var .4425 → [[.789228,.939558],[−.864393,−.864393]];
  // biased var .331875 → [[.911322,1.084908],[−.998115,−.998115]].
  auto in = inputs({{0, 1}, {0, 0}}, {{1, 1}, {1, 1}}, {0, 1});
  in.kl_rewards = mat({{-0.1, 0.0}, {0.0, -0.2}});
  AdvantageOptions o;
  const auto out = advantage_reinforce_pp(in, o);
  EXPECT_TRUE(close(out.returns, Mat{{0.9, 1.0}, {-0.2, -0.2}}));
  EXPECT_TRUE(close(out.advantages, Mat{{0.789228, 0.939558}, {-0.864393, -0.864393}}));
  o.rpp.whiten_var = "biased";
  EXPECT_TRUE(close(advantage_reinforce_pp(in, o).advantages, Mat{{0.911322, 1.084908}, {-0.998115, -0.998115}}));
  o.norm_by_std = false;  // no_std_norm: only the mean .375 is subtracted
  EXPECT_TRUE(close(advantage_reinforce_pp(in, o).advantages, Mat{{0.525, 0.625}, {-0.575, -0.575}}));
}

TEST(ReinforcePp, HolesCarryOrReset) {
  // r = [0, 5(masked), 1], m = [1,0,1], γ = 1. Carry: the hole is skipped → G = [1, 1, 1].
  // reset_on_holes (verl): G2 = 1, G1 = 5 + 1 = 6 then reset → G0 = 0.
  auto in = inputs({{0, 5, 1}}, {{1, 0, 1}}, {0});
  AdvantageOptions o;
  o.whiten = false;
  EXPECT_TRUE(close(advantage_reinforce_pp(in, o).returns, Mat{{1, 1, 1}}));
  o.rpp.reset_on_holes = true;
  EXPECT_TRUE(close(advantage_reinforce_pp(in, o).returns, Mat{{0, 6, 1}}));
}

TEST(ReinforcePpBaseline, SubtractsGroupMeanOfOutcomeOnly) {
  // Group {0,1} outcomes 1, 0 → mean .5 → R' = ±.5; KL rewards are not part of the baseline.
  // Row 0: r = [−.1, .5] → G = [.4, .5]; row 1: r = [0, −.5 − .2] → G = [−.7, −.7]. No whitening.
  auto in = inputs({{0, 1}, {0, 0}}, {{1, 1}, {1, 1}}, {3, 3});
  in.kl_rewards = mat({{-0.1, 0.0}, {0.0, -0.2}});
  AdvantageOptions o;
  o.whiten = false;
  EXPECT_TRUE(close(advantage_reinforce_pp_baseline(in, o).advantages, Mat{{0.4, 0.5}, {-0.7, -0.7}}));
}

TEST(ReinforcePp, MatchesLoopReferenceOnRandomBatches) {
  for (uint32_t seed = 400; seed < 460; ++seed) {
    const auto b = random_batch(seed, true, seed % 2 == 0, true);
    double valid = 0;
    for (const auto& row : b.mask)
      for (double v : row) valid += v != 0;
    for (bool baseline : {false, true}) {
      for (bool reset : {false, true}) {
        AdvantageOptions o;
        o.gamma = seed % 2 ? 1.0 : 0.8;
        o.rpp.reset_on_holes = reset;
        o.singleton = "zero";  // a group of one is its own baseline, as in the reference below
        o.norm_by_std = seed % 5 != 0;
        Mat r = b.r_tok;
        if (baseline) {
          const Vec sums = ref::row_sums(b.r_tok);
          for (const auto& [g, rows] : ref::groups_of(b.gid)) {
            Vec x;
            for (size_t i : rows) x.push_back(sums[i]);
            for (size_t i : rows)
              for (size_t t = r[i].size(); t-- > 0;)
                if (b.mask[i][t] != 0) {
                  r[i][t] -= ref::mean_of(x);
                  break;
                }
          }
        }
        const Mat ret = ref::returns_to_go(r, b.mask, o.gamma, reset);
        const auto fn = baseline ? advantage_reinforce_pp_baseline : advantage_reinforce_pp;
        if (valid == 1 && o.norm_by_std) {
          EXPECT_THROW(fn(b.in(), o), c10::Error);
          continue;
        }
        const Mat adv = ref::masked(ref::whiten(ret, b.mask, true, o.norm_by_std), b.mask);
        const auto out = fn(b.in(), o);
        ASSERT_TRUE(close(out.returns, ret, 1e-9)) << "seed " << seed;
        ASSERT_TRUE(close(out.advantages, adv, 1e-9)) << "seed " << seed;
      }
    }
  }
}

}  // namespace
}  // namespace keel::credit
