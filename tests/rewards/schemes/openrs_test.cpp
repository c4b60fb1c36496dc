// Tests of OpenRS pairwise rubric aggregation (spec rewards.md B3c).
#include "rewards/schemes/openrs.h"

#include <gtest/gtest.h>

#include "tests/rewards/schemes/test_util.h"

namespace keel::rewards {
namespace {

using testing::dt;
using testing::lt;

TEST(OpenRs, WorkedExample) {
  // Core A by 2 (+2), important B by 1 (−1), highlight tie (skipped): (2·5 − 1·2)/(5 + 2 + 1e-6) = 1.1428570.
  OpenRsOptions o;
  auto types = lt({1, 2, 3});
  auto s = dt({openrs_signed_score('A', 2), openrs_signed_score('B', 1), openrs_signed_score('T', 4)});
  EXPECT_NEAR(openrs_aggregate(types.view({1, 3}), s.view({1, 3}), {}, o).item<double>(), 1.1428570, 1e-6);
  // Plus a fatal criterion with B winning by 3: S = −3 (fatal veto, fatal scores only).
  auto types2 = lt({1, 2, 3, 0}).view({1, 4});
  auto s2 = dt({2, -1, 0, openrs_signed_score('B', 3)}).view({1, 4});
  EXPECT_NEAR(openrs_aggregate(types2, s2, {}, o).item<double>(), -3.0, 1e-12);
  // A fatal criterion that is a tie does not veto.
  auto s3 = dt({2, -1, 0, 0}).view({1, 4});
  EXPECT_NEAR(openrs_aggregate(types2, s3, {}, o).item<double>(), 1.1428570, 1e-6);
}

TEST(OpenRs, MinScoreAndBidirectional) {
  OpenRsOptions o;
  o.min_score = 0.5;
  auto s = openrs_aggregate(lt({3}).view({1, 1}), dt({0.4}).view({1, 1}), {}, o);  // 0.4/(1+1e-6) < 0.5 -> 0
  EXPECT_EQ(s.item<double>(), 0.0);
  // forward / backward: A wins iff fwd > m and bwd ≤ −m; B mirror; else same.
  auto v = openrs_bidirectional(dt({1.0, 1.0, -1.0, 0.2, -1.0}), dt({-1.0, 0.0, 1.0, -1.0, -1.0}), o);
  EXPECT_TRUE(torch::equal(v, lt({1, 0, -1, 0, 0})));
  OpenRsOptions zero;
  EXPECT_TRUE(torch::equal(openrs_bidirectional(dt({1.0, 0.0}), dt({0.0, 0.0}), zero), lt({1, 0})));
  // Guardrail: a decisive verifier overrides the rubric.
  EXPECT_TRUE(torch::equal(openrs_guardrail(lt({0, -1, 1}), lt({1, 1, 0})), lt({1, -1, 1})));
}

TEST(OpenRs, AggregateMatchesLoopReference) {
  for (int seed = 0; seed < 60; ++seed) {
    torch::manual_seed(seed);
    const int64_t p = 1 + seed % 5, k = 1 + seed % 6;
    auto types = torch::randint(0, 4, {p, k}, torch::kLong);
    auto scores = torch::randint(-3, 4, {p, k}, torch::kLong).to(torch::kFloat64);
    auto mask = torch::rand({p, k}) > 0.2;
    OpenRsOptions o;
    o.min_score = (seed % 3) * 0.5;
    auto fast = openrs_aggregate(types, scores, mask, o);
    const double wt[4] = {0, 5, 2, 1};
    for (int64_t i = 0; i < p; ++i) {
      double fatal = 0, num = 0, den = 0;
      bool has_fatal = false;
      for (int64_t j = 0; j < k; ++j) {
        const double s = scores[i][j].item<double>();
        if (!mask[i][j].item<bool>() || s == 0) continue;
        const int64_t t = types[i][j].item<int64_t>();
        if (t == 0) {
          has_fatal = true;
          fatal += s;
        } else {
          num += wt[t] * s;
          den += wt[t];
        }
      }
      double e = has_fatal ? fatal : num / (den + 1e-6);
      if (std::abs(e) < o.min_score) e = 0;
      EXPECT_NEAR(fast[i].item<double>(), e, 1e-12);
    }
  }
}

TEST(OpenRs, RoundRobinMatchesLoop) {
  for (int seed = 0; seed < 50; ++seed) {
    torch::manual_seed(seed);
    const int64_t b = 1 + seed % 3, g = 1 + seed % 5;
    auto v = torch::randint(-1, 2, {b, g, g}, torch::kLong);
    auto r = openrs_round_robin_reward(v);
    for (int64_t x = 0; x < b; ++x)
      for (int64_t i = 0; i < g; ++i) {
        double sum = 0;
        for (int64_t j = 0; j < g; ++j)
          if (j != i) sum += v[x][i][j].item<int64_t>();
        EXPECT_NEAR(r[x][i].item<double>(), g > 1 ? sum / (g - 1) : 0.0, 1e-12);
      }
  }
  OpenRsOptions o;
  EXPECT_EQ(testing::read_yaml("  w_core: -1\n", o, read_openrs_options).size(), 1u);
}

}  // namespace
}  // namespace keel::rewards
