// Tests of PRM step scores and aggregations (spec rewards.md C1).
#include "rewards/schemes/prm.h"

#include <gtest/gtest.h>

#include "tests/rewards/schemes/test_util.h"
#include "base/error.h"

namespace keel::rewards {
namespace {

using testing::dt;

TEST(Prm, WorkedExample) {
  // p = [0.9, 0.6, 0.95]: min 0.6, prod 0.513, last 0.95, mean 0.8166667.
  auto p = dt({0.9, 0.6, 0.95}).view({1, 3});
  EXPECT_NEAR(prm_aggregate(p, {}, "min").item<double>(), 0.6, 1e-12);
  EXPECT_NEAR(prm_aggregate(p, {}, "prod").item<double>(), 0.513, 1e-12);
  EXPECT_NEAR(prm_aggregate(p, {}, "last").item<double>(), 0.95, 1e-12);
  EXPECT_NEAR(prm_aggregate(p, {}, "mean").item<double>(), 0.8166667, 1e-6);
  EXPECT_THROW(prm_aggregate(p, {}, "max"), Error);
  // ℓ_good = 2, ℓ_bad = 0 -> 0.8807971 (two-way softmax).
  EXPECT_NEAR(prm_two_way_prob(dt({2}), dt({0})).item<double>(), 0.8807971, 1e-6);
  auto logits = torch::zeros({1, 2, 5}, torch::kFloat64);
  logits[0][1][3] = 2.0;  // good id 3, bad id 4
  auto probs = prm_step_probs(logits, 3, 4);
  EXPECT_NEAR(probs[0][1].item<double>(), 0.8807971, 1e-6);
  EXPECT_NEAR(probs[0][0].item<double>(), 0.5, 1e-12);
}

TEST(Prm, AggregatesMatchLoopWithMasks) {
  for (int seed = 0; seed < 60; ++seed) {
    torch::manual_seed(seed);
    const int64_t n = 1 + seed % 5, s = 1 + seed % 7;
    auto p = torch::rand({n, s}, torch::kFloat64);
    auto m = torch::rand({n, s}) > 0.3;
    for (const std::string method : {"min", "prod", "last", "mean"}) {
      auto fast = prm_aggregate(p, m, method);
      for (int64_t i = 0; i < n; ++i) {
        std::vector<double> v;
        for (int64_t j = 0; j < s; ++j)
          if (m[i][j].item<bool>()) v.push_back(p[i][j].item<double>());
        double e = 0;
        if (!v.empty()) {
          if (method == "min") e = *std::min_element(v.begin(), v.end());
          if (method == "prod") {
            e = 1;
            for (double x : v) e *= x;
          }
          if (method == "last") e = v.back();
          if (method == "mean") {
            for (double x : v) e += x / v.size();
          }
        }
        EXPECT_NEAR(fast[i].item<double>(), e, 1e-12) << method << " seed " << seed;
      }
    }
  }
}

TEST(Prm, DenseRewards) {
  PrmOptions o;
  auto p = dt({0.9, 0.6, 0.95, 0.5, 0.0, 0.0}).view({2, 3});
  auto m = torch::tensor({true, true, true, true, false, false}).view({2, 3});
  EXPECT_TRUE(torch::allclose(prm_dense_rewards(p, m, o), dt({0.9, 0.6, 0.95, 0.5, 0, 0}).view({2, 3})));
  o.differenced = true;
  EXPECT_TRUE(torch::allclose(prm_dense_rewards(p, m, o), dt({0.9, -0.3, 0.35, 0.5, 0, 0}).view({2, 3})));
  auto e = testing::read_yaml("  aggregate: max\n  label_tokens: [a]\n", o, read_prm_options);
  EXPECT_EQ(e.size(), 2u);
}

}  // namespace
}  // namespace keel::rewards
