// Tests of the linear length penalty and the ceiling (spec rewards.md A2 items 1–2).
#include "rewards/schemes/pre_shaping.h"

#include <gtest/gtest.h>

#include "tests/rewards/schemes/test_util.h"

namespace keel::rewards {
namespace {

using testing::dt;

TEST(PreShaping, LengthPenaltyWorkedExample) {
  // L0 = 300, c = 0.01, L = 350, r = 1.2 -> 1.2 − 0.01·50 = 0.7; L ≤ L0 is untouched.
  auto out = length_penalty_reward(dt({1.2, 1.2}), testing::lt({350, 120}), {});
  EXPECT_NEAR(out[0].item<double>(), 0.7, 1e-12);
  EXPECT_NEAR(out[1].item<double>(), 1.2, 1e-12);
  LengthPenaltyOptions off;
  off.enabled = false;
  EXPECT_NEAR(length_penalty_reward(dt({1.2}), testing::lt({350}), off).item<double>(), 1.2, 1e-12);
}

TEST(PreShaping, CeilClampsOnlyWhenSet) {
  CeilOptions o;
  EXPECT_TRUE(torch::equal(ceil_reward(dt({1, 5}), o), dt({1, 5})));
  EXPECT_TRUE(testing::read_yaml("  value: 2.5\n", o, read_ceil_options).empty());
  ASSERT_TRUE(o.ceil.has_value());
  EXPECT_TRUE(torch::equal(ceil_reward(dt({1, 5}), o), dt({1, 2.5})));
}

TEST(PreShaping, LengthPenaltyMatchesLoopReference) {
  for (int seed = 0; seed < 50; ++seed) {
    torch::manual_seed(seed);
    LengthPenaltyOptions o;
    o.valid_len = 10 * (seed % 5);
    o.per_token = 0.001 * (1 + seed % 3);
    auto r = torch::randn({8}, torch::kFloat64);
    auto len = torch::randint(0, 100, {8}, torch::kLong);
    auto out = length_penalty_reward(r, len, o);
    for (int i = 0; i < 8; ++i) {
      const double over = std::max(0.0, static_cast<double>(len[i].item<int64_t>()) - o.valid_len);
      EXPECT_NEAR(out[i].item<double>(), r[i].item<double>() - o.per_token * over, 1e-12);
    }
  }
  LengthPenaltyOptions o;
  EXPECT_EQ(testing::read_yaml("  per_token: -1\n", o, read_length_penalty_options).size(), 1u);
}

}  // namespace
}  // namespace keel::rewards
