// Tests of rubric explicit aggregation (spec rewards.md B3a) and POW3R (B3b, [interp]).
#include "rewards/schemes/rubric.h"

#include <gtest/gtest.h>

#include "tests/rewards/schemes/test_util.h"
#include "base/error.h"

namespace keel::rewards {
namespace {

using testing::dt;
using testing::lt;

TEST(Rubric, ExplicitWorkedExample) {
  // Essential met, Important missed, Optional met, Pitfall avoided: (1.0 + 0.3 + 0.9)/2.9 = 0.7586207.
  RubricOptions o;
  auto w = dt({rubric_category_weight("essential", o), rubric_category_weight("important", o),
               rubric_category_weight("optional", o), rubric_category_weight("pitfall", o)});
  auto r = rubric_explicit_reward(dt({1, 0, 1, 1}).view({1, 4}), w, {});
  EXPECT_NEAR(r.item<double>(), 0.7586207, 1e-6);
  EXPECT_THROW(rubric_category_weight("bonus", o), Error);
}

TEST(Rubric, Pow3rWorkedExample) {
  // Weights [1.0, 0.7]; c1 passes in all 4 rollouts, c2 in rollouts 1 and 3.
  // Static: [1.7/1.7, 1/1.7, 1, 1/1.7] = [1, 0.5882, 1, 0.5882]. POW3R: p = [1, 0.5] -> α = [0, 1]
  // -> w̃ = [0, 0.7] -> [1, 0, 1, 0].
  auto c = dt({1, 1, 1, 0, 1, 1, 1, 0}).view({4, 2});
  auto w = dt({1.0, 0.7});
  auto g = lt({0, 0, 0, 0});
  EXPECT_TRUE(torch::allclose(rubric_explicit_reward(c, w, {}), dt({1, 1 / 1.7, 1, 1 / 1.7}), 1e-12, 1e-12));
  auto r = pow3r_reward(c, w, {}, g, {}, {});
  EXPECT_TRUE(torch::allclose(r, dt({1, 0, 1, 0}), 1e-12, 1e-12));
  EXPECT_TRUE(torch::allclose(pow3r_alpha(c, {}, g)[0], dt({0, 1}), 1e-12, 1e-12));
}

TEST(Rubric, Pow3rFallsBackToStaticWhenNothingContrasts) {
  // All criteria saturated or unreachable: Σ w̃ = 0 -> static weights.
  auto c = dt({1, 0, 1, 0}).view({2, 2});
  auto r = pow3r_reward(c, dt({1.0, 3.0}), {}, lt({5, 5}), {}, {});
  EXPECT_TRUE(torch::allclose(r, dt({0.25, 0.25}), 1e-12, 1e-12));
}

// Slow reference of POW3R (with optional category balance) for one row.
double pow3r_loop(const torch::Tensor& c, const torch::Tensor& w, const torch::Tensor& m, const torch::Tensor& g,
                  const torch::Tensor& cat, const Pow3rOptions& o, int64_t i) {
  const int64_t n = c.size(0), k = c.size(1);
  std::vector<double> wt(k);
  for (int64_t j = 0; j < k; ++j) {
    double pass = 0, cnt = 0;
    for (int64_t q = 0; q < n; ++q)
      if (g[q].item<int64_t>() == g[i].item<int64_t>() && m[q][j].item<bool>()) {
        pass += c[q][j].item<double>();
        cnt += 1;
      }
    const double p = cnt > 0 ? pass / cnt : 0;
    wt[j] = w[i][j].item<double>() * std::max(std::sqrt(p * (1 - p)) / 0.5, o.eps);
  }
  auto mean_over = [&](const std::vector<double>& ww, int64_t only_cat) {
    double num = 0, den = 0;
    for (int64_t j = 0; j < k; ++j) {
      if (!m[i][j].item<bool>() || (only_cat >= 0 && cat[i][j].item<int64_t>() != only_cat)) continue;
      num += ww[j] * c[i][j].item<double>();
      den += ww[j];
    }
    return std::make_pair(num, den);
  };
  std::vector<double> ws(k);
  for (int64_t j = 0; j < k; ++j) ws[j] = w[i][j].item<double>();
  auto adapted = [&](int64_t only_cat) {
    auto [num, den] = mean_over(wt, only_cat);
    if (den > 0) return num / den;
    auto [n2, d2] = mean_over(ws, only_cat);
    return d2 > 0 ? n2 / d2 : 0.0;
  };
  if (!o.category_balance) return adapted(-1);
  double num = 0, den = 0;
  for (int64_t q = 0; q < 3; ++q) {
    const double total = mean_over(ws, q).second;
    num += total * adapted(q);
    den += total;
  }
  return den > 0 ? num / den : 0.0;
}

TEST(Rubric, Pow3rMatchesLoopReference) {
  for (int seed = 0; seed < 60; ++seed) {
    torch::manual_seed(seed);
    const int64_t n = 2 + seed % 9, k = 1 + seed % 5;
    auto c = (torch::rand({n, k}) > 0.5).to(torch::kFloat64);
    auto g = torch::randint(0, 1 + seed % 3, {n}, torch::kLong);
    auto w = torch::rand({n, k}, torch::kFloat64);
    auto m = torch::rand({n, k}) > 0.2;
    auto cat = torch::randint(0, 3, {n, k}, torch::kLong);
    Pow3rOptions o;
    o.eps = (seed % 2) * 0.1;
    o.category_balance = seed % 3 == 0;
    auto fast = pow3r_reward(c, w, m, g, cat, o);
    for (int64_t i = 0; i < n; ++i)
      EXPECT_NEAR(fast[i].item<double>(), pow3r_loop(c, w, m, g, cat, o, i), 1e-10) << "seed " << seed;
  }
}

TEST(Rubric, Readers) {
  RubricOptions o;
  EXPECT_TRUE(testing::read_yaml("  category_weights: {pitfall: 0.5}\n", o, read_rubric_options).empty());
  EXPECT_EQ(o.category_weights["pitfall"], 0.5);
  EXPECT_EQ(testing::read_yaml("  category_weights: {bonus: 0.5}\n", o, read_rubric_options).size(), 1u);
  Pow3rOptions p;
  EXPECT_EQ(testing::read_yaml("  eps: 2\n", p, read_pow3r_options).size(), 1u);
}

}  // namespace
}  // namespace keel::rewards
