// Tests of the ReMax estimator (spec §3.3).
#include "trainer/credit/remax.h"

#include <gtest/gtest.h>

#include "tests/trainer/credit/reference_estimators.h"

namespace keel::credit {
namespace {

using namespace keel::credit::testing;

TEST(Remax, SpecWorkedExample) {
  // Reward 0.8 at the last token, greedy reward 0.5 → every valid token gets 0.8 − 0.5 = 0.3.
  auto in = inputs({{0, 0, 0.8, 0}}, {{1, 1, 1, 0}}, {0});
  in.baseline_rewards = vec({0.5});
  const auto out = advantage_remax(in, AdvantageOptions{});
  EXPECT_TRUE(close(out.advantages, Mat{{0.3, 0.3, 0.3, 0}}));
  EXPECT_TRUE(close(out.returns, Mat{{0.8, 0.8, 0.8, 0}}));
}

TEST(Remax, NeedsBaselineRewards) {
  EXPECT_THROW(advantage_remax(inputs({{1}}, {{1}}, {0}), AdvantageOptions{}), c10::Error);
}

TEST(Remax, MatchesLoopReferenceOnRandomBatches) {
  for (uint32_t seed = 500; seed < 560; ++seed) {
    const auto b = random_batch(seed, true, false, true);
    Vec base;
    for (size_t i = 0; i < b.gid.size(); ++i) base.push_back(0.01 * static_cast<double>(b.gid[i] % 50));
    auto in = b.in();
    in.baseline_rewards = vec(base);
    Mat want = b.r_tok, rtg = b.r_tok;
    for (size_t i = 0; i < want.size(); ++i) {
      double g = 0;
      for (size_t t = want[i].size(); t-- > 0;) {
        g += b.mask[i][t] * b.r_tok[i][t];
        rtg[i][t] = g;
        want[i][t] = b.mask[i][t] != 0 ? g - base[i] : 0.0;
      }
    }
    const auto out = advantage_remax(in, AdvantageOptions{});
    ASSERT_TRUE(close(out.advantages, want, 1e-9)) << "seed " << seed;
    ASSERT_TRUE(close(out.returns, rtg, 1e-9)) << "seed " << seed;
  }
}

}  // namespace
}  // namespace keel::credit
