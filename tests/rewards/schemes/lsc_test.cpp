// Tests of the log-sigmoid-centred reward (spec rewards.md A2 item 6).
#include "rewards/schemes/lsc.h"

#include <gtest/gtest.h>

#include "tests/rewards/schemes/test_util.h"

namespace keel::rewards {
namespace {

using testing::dt;

TEST(Lsc, WorkedExample) {
  // refs [0, 2]: mean 1, pop-std 1 -> r_ref = 1 + 1.0364334 = 2.0364334; r = 3 -> logσ(0.9635666) = −0.3231914.
  EXPECT_NEAR(normal_quantile(0.85), 1.0364334, 1e-7);
  auto out = lsc_reward(dt({3.0}), dt({0.0, 2.0}).view({1, 2}), {}, {});
  EXPECT_NEAR(out.item<double>(), -0.3231914, 1e-6);
}

TEST(Lsc, NoReferencesUsesZeroAndIsStableForLargeGaps) {
  auto mask = torch::tensor({false, false, true, true}).view({2, 2});
  auto out = lsc_reward(dt({1.0, -800.0}), dt({7, 7, 0, 0}).view({2, 2}), mask, {});
  EXPECT_NEAR(out[0].item<double>(), std::log(testing::sig(1.0)), 1e-12);
  EXPECT_NEAR(out[1].item<double>(), -800.0, 1e-9);  // logσ(−800) = −800 + tiny, no −inf
}

TEST(Lsc, MatchesLoopReference) {
  for (int seed = 0; seed < 50; ++seed) {
    torch::manual_seed(seed);
    const int64_t n = 1 + seed % 6, m = 1 + seed % 4;
    auto r = torch::randn({n}, torch::kFloat64) * 2;
    auto refs = torch::randn({n, m}, torch::kFloat64) * 2;
    auto mask = torch::rand({n, m}) > 0.4;
    auto out = lsc_reward(r, refs, mask, {});
    for (int64_t i = 0; i < n; ++i) {
      std::vector<double> v;
      for (int64_t j = 0; j < m; ++j)
        if (mask[i][j].item<bool>()) v.push_back(refs[i][j].item<double>());
      double ref = 0;
      if (!v.empty()) {
        double mean = 0, var = 0;
        for (double x : v) mean += x;
        mean /= v.size();
        for (double x : v) var += (x - mean) * (x - mean);
        ref = mean + 1.0364333894937898 * std::sqrt(var / v.size());
      }
      EXPECT_NEAR(out[i].item<double>(), std::log(testing::sig(r[i].item<double>() - ref)), 1e-10);
    }
  }
  LscOptions o;
  EXPECT_EQ(testing::read_yaml("  quantile: 1.5\n", o, read_lsc_options).size(), 1u);
}

}  // namespace
}  // namespace keel::rewards
