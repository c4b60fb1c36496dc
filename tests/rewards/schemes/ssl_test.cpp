// Tests of the SSL tiered reward (spec rewards.md A3, an [interp] scheme).
#include "rewards/schemes/ssl.h"

#include <gtest/gtest.h>

#include "tests/rewards/schemes/test_util.h"

namespace keel::rewards {
namespace {

using testing::dt;

TEST(Ssl, WorkedExample) {
  // Box centre (100,100), w = h = 20 (half 10). Click (103,100): d = 0.3, s = exp(−0.045) = 0.9560
  // -> reaches 0.9, 0.6, 0.3 -> tier 3, Ŝ = 1.0, R = 1 + 0.5·1 = 1.5.
  // Click (110,110): d = √2, s = exp(−1) = 0.3679 -> reaches only 0.3 -> tier 1, Ŝ = 0.2, R = 1.1.
  SslOptions o;
  auto click = dt({103, 100, 110, 110}).view({2, 2});
  auto center = dt({100, 100, 100, 100}).view({2, 2});
  auto size = dt({20, 20, 20, 20}).view({2, 2});
  auto s = ssl_gaussian_proximity(click, center, size, {}, {}, o);
  EXPECT_NEAR(s[0].item<double>(), 0.9560, 1e-4);
  EXPECT_NEAR(s[1].item<double>(), 0.3679, 1e-4);
  EXPECT_TRUE(torch::equal(ssl_tier(s, o), testing::lt({3, 1})));
  auto r = ssl_reward(dt({1, 1}), s, {}, o);
  EXPECT_NEAR(r[0].item<double>(), 1.5, 1e-12);
  EXPECT_NEAR(r[1].item<double>(), 1.1, 1e-12);
}

TEST(Ssl, EdgeCasesZeroBoxAndUnparsable) {
  SslOptions o;
  // w = 0 raised to 1% of a 1000-px screen side (10 px, half 5): click 5 px right -> d = 1, s = e^−0.5.
  auto s = ssl_gaussian_proximity(dt({105, 50}).view({1, 2}), dt({100, 50}).view({1, 2}), dt({0, 0}).view({1, 2}),
                                  {}, dt({1000, 1000}).view({1, 2}), o);
  EXPECT_NEAR(s.item<double>(), std::exp(-0.5), 1e-12);
  // Unparsable coordinates: s = 0 and C = 0 -> R = α·v_0 = 0 even when the verifier said success.
  auto valid = torch::tensor({false});
  auto s0 = ssl_gaussian_proximity(dt({100, 100}).view({1, 2}), dt({100, 100}).view({1, 2}), dt({20, 20}).view({1, 2}),
                                   valid, {}, o);
  EXPECT_EQ(s0.item<double>(), 0.0);
  EXPECT_EQ(ssl_reward(dt({1}), dt({0.99}), valid, o).item<double>(), 0.0);
}

TEST(Ssl, BlockMatchAndStepMean) {
  SslOptions o;
  // 7 of 9 blocks matched: s = 0.777 -> tiers reached: 0.6, 0.3 -> tier 2, v = 0.5.
  auto s = ssl_block_match_proximity(testing::lt({7, 0}), testing::lt({9, 0}));
  EXPECT_NEAR(s[0].item<double>(), 7.0 / 9.0, 1e-12);
  EXPECT_EQ(s[1].item<double>(), 0.0);
  EXPECT_NEAR(ssl_reward(dt({0, 0}), s, {}, o)[0].item<double>(), 0.25, 1e-12);
  // mean over valid steps only: (0.9 + 0.3)/2 = 0.6.
  auto agg = ssl_aggregate_steps(dt({0.9, 0.3, 0.0}).view({1, 3}), torch::tensor({true, true, false}).view({1, 3}));
  EXPECT_NEAR(agg.item<double>(), 0.6, 1e-12);
}

TEST(Ssl, TierMatchesLoopReference) {
  for (int seed = 0; seed < 50; ++seed) {
    torch::manual_seed(seed);
    SslOptions o;
    auto s = torch::rand({16}, torch::kFloat64);
    s[0] = 0.9;  // exact threshold values count as reached
    s[1] = 0.3;
    auto c = (torch::rand({16}) > 0.5).to(torch::kFloat64);
    auto r = ssl_reward(c, s, {}, o);
    for (int i = 0; i < 16; ++i) {
      const double x = s[i].item<double>();
      const double v = x >= 0.9 ? 1.0 : x >= 0.6 ? 0.5 : x >= 0.3 ? 0.2 : 0.0;
      EXPECT_NEAR(r[i].item<double>(), c[i].item<double>() + 0.5 * v, 1e-12);
    }
  }
}

TEST(Ssl, ReaderCrossChecks) {
  SslOptions o;
  EXPECT_TRUE(testing::read_yaml("  num_tiers: 3\n  thresholds: [0.8, 0.4]\n  tier_values: [0, 0.5, 1]\n", o,
                                 read_ssl_options).empty());
  SslOptions fresh;
  auto e = testing::read_yaml("  thresholds: [0.3, 0.6, 0.9]\n  tier_values: [0, 1]\n", fresh, read_ssl_options);
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0], "t.yaml:2: p.thresholds: must be strictly decreasing");
  EXPECT_EQ(e[1], "t.yaml:3: p.tier_values: expected num_tiers = 4 values, got 2");
}

}  // namespace
}  // namespace keel::rewards
