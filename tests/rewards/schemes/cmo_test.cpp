// Tests of CMO correlation-weighted advantages (spec rewards.md B4).
#include "rewards/schemes/cmo.h"

#include <gtest/gtest.h>

#include "tests/rewards/schemes/test_util.h"

namespace keel::rewards {
namespace {

using testing::dt;

TEST(Cmo, WorkedExample) {
  // a = b = [1,0,1,0], c = [0,1,1,0]: ρ_ab = 1, ρ_ac = ρ_bc = 0 -> b = [0.5, 0.5, 0] -> u = [0.5, 0.5, 1]
  // -> w = softmax(u/0.5) = [0.2119416, 0.2119416, 0.5761169]; per-concept A = ±1 -> aggregated
  // [−0.1522338, 0.1522338, 1, −1] -> batch standardised (population std) [−0.2128389, 0.2128389, 1.3981057, −1.3981057].
  auto r = dt({1, 1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0}).view({4, 3});
  auto g = testing::lt({0, 0, 0, 0});
  CmoOptions o;
  auto res = cmo_advantages(r, g, o);
  EXPECT_TRUE(torch::allclose(res.weights[0], dt({0.2119416, 0.2119416, 0.5761169}), 0, 1e-6));
  EXPECT_TRUE(torch::allclose(res.advantages, dt({-0.2128389, 0.2128389, 1.3981057, -1.3981057}), 0, 1e-4));
  o.batch_standardize = false;
  EXPECT_TRUE(torch::allclose(cmo_advantages(r, g, o).advantages, dt({-0.1522338, 0.1522338, 1.0, -1.0}), 0, 1e-6));
}

TEST(Cmo, ConstantConceptAndPadding) {
  CmoOptions o;
  o.batch_standardize = false;
  // Concept 2 constant: b_2 = 1 -> u_2 = 0; concepts 0,1 anti-correlated (ρ = −1, ρ with the constant
  // concept = 0): b = (1 − 1 + 0 − 1)/2 = −0.5 -> u = 1.5 -> w ∝ (e³, e³, 1).
  auto r = dt({1, 0, 5, 0, 1, 5, 1, 0, 5}).view({3, 3});
  auto res = cmo_advantages(r, testing::lt({1, 1, 1}), o);
  const double e4 = std::exp(3.0);
  EXPECT_TRUE(torch::allclose(res.weights[0], dt({e4 / (2 * e4 + 1), e4 / (2 * e4 + 1), 1 / (2 * e4 + 1)}), 0, 1e-9));
  // A padded entry: plain sum, padded entry contributes 0 and is left out of that concept's stats.
  auto p = dt({1, -1, 0, 4, 1, 2}).view({3, 2});
  auto pr = cmo_advantages(p, testing::lt({0, 0, 0}), o);
  EXPECT_TRUE(torch::equal(pr.weights[0], dt({1, 1})));
  // concept 0: [1,0,1] mean 2/3, var 2/9; concept 1: [−, 4, 2] mean 3, var 1.
  const double s0 = std::sqrt(2.0 / 9 + 1e-8), s1 = std::sqrt(1 + 1e-8);
  EXPECT_NEAR(pr.advantages[0].item<double>(), (1 - 2.0 / 3) / s0, 1e-9);
  EXPECT_NEAR(pr.advantages[1].item<double>(), (0 - 2.0 / 3) / s0 + 1 / s1, 1e-9);
  EXPECT_NEAR(pr.advantages[2].item<double>(), (1 - 2.0 / 3) / s0 - 1 / s1, 1e-9);
}

TEST(Cmo, MatchesLoopReference) {
  for (int seed = 0; seed < 50; ++seed) {
    torch::manual_seed(seed);
    const int64_t n = 2 + seed % 10, k = 2 + seed % 3;
    auto r = torch::randint(0, 3, {n, k}, torch::kLong).to(torch::kFloat64);
    auto g = torch::randint(0, 1 + seed % 3, {n}, torch::kLong);
    CmoOptions o;
    o.temperature = 0.25 + 0.25 * (seed % 3);
    auto fast = cmo_advantages(r, g, o).advantages;
    std::vector<double> adv(n);
    for (int64_t gid = 0; gid < 3; ++gid) {
      std::vector<int64_t> rows;
      for (int64_t i = 0; i < n; ++i)
        if (g[i].item<int64_t>() == gid) rows.push_back(i);
      if (rows.empty()) continue;
      const double m = static_cast<double>(rows.size());
      std::vector<double> mean(k, 0), sd(k, 0);
      for (int64_t c = 0; c < k; ++c) {
        for (auto i : rows) mean[c] += r[i][c].item<double>() / m;
        for (auto i : rows) sd[c] += std::pow(r[i][c].item<double>() - mean[c], 2) / m;
        sd[c] = std::sqrt(sd[c]);
      }
      std::vector<double> u(k);
      for (int64_t c = 0; c < k; ++c) {
        double b;
        if (sd[c] <= 1e-6 || rows.size() < 2) {
          b = 1;
        } else {
          double sum = 0;
          for (int64_t d = 0; d < k; ++d) {
            double cov = 0;
            for (auto i : rows) cov += (r[i][c].item<double>() - mean[c]) * (r[i][d].item<double>() - mean[d]) / m;
            const double rho = sd[d] > 0 ? cov / (sd[c] * sd[d]) : 0.0;
            sum += rho;
          }
          b = (sum - 1) / (k - 1);
        }
        u[c] = 1 - b;
      }
      double z = 0;
      for (int64_t c = 0; c < k; ++c) z += std::exp(u[c] / o.temperature);
      for (auto i : rows) {
        double a = 0;
        for (int64_t c = 0; c < k; ++c) {
          const double w = rows.size() < 2 ? 1.0 : std::exp(u[c] / o.temperature) / z;
          a += w * (r[i][c].item<double>() - mean[c]) / std::sqrt(sd[c] * sd[c] + 1e-8);
        }
        adv[i] = a;
      }
    }
    double mu = 0, var = 0;
    for (double a : adv) mu += a / n;
    for (double a : adv) var += (a - mu) * (a - mu) / n;
    for (int64_t i = 0; i < n; ++i)
      EXPECT_NEAR(fast[i].item<double>(), (adv[i] - mu) / (std::sqrt(var) + 1e-8), 1e-8) << "seed " << seed;
  }
  CmoOptions o;
  EXPECT_EQ(testing::read_yaml("  temperature: 0\n", o, read_cmo_options).size(), 1u);
}

}  // namespace
}  // namespace keel::rewards
