// Tests of Ctrl-U uncertainty weighting (spec rewards.md B6).
#include "rewards/schemes/ctrl_u.h"

#include <gtest/gtest.h>

#include "tests/rewards/schemes/test_util.h"

namespace keel::rewards {
namespace {

using testing::dt;

TEST(CtrlU, WorkedExample) {
  // o1 = [2, 0], o2 = [0, 0]: p1 = [0.8808, 0.1192], p2 = [0.5, 0.5];
  // KL(p2‖p1) = 0.5·log(0.5/0.8808) + 0.5·log(0.5/0.1192) = 0.4337808; exp(−u) = 0.6480543.
  auto u = ctrlu_kl_uncertainty(dt({2, 0}).view({1, 2}), dt({0, 0}).view({1, 2}), 1.0);
  EXPECT_NEAR(u.item<double>(), 0.4337808, 1e-6);
  EXPECT_NEAR(std::exp(-u.item<double>()), 0.6480543, 1e-6);
  // Weighted reward of two scalar evaluations 1.0 and 0.8 with that u: 0.9·0.6480543.
  EXPECT_NEAR(ctrlu_weighted_reward(dt({1.0}), dt({0.8}), u.view({1})).item<double>(), 0.9 * 0.6480543, 1e-6);
  EXPECT_NEAR(ctrlu_scalar_uncertainty(dt({1.0}), dt({0.4}), 2.0).item<double>(), 0.36, 1e-12);
}

TEST(CtrlU, LossMatchesLoop) {
  for (int seed = 0; seed < 50; ++seed) {
    torch::manual_seed(seed);
    CtrlUOptions o;
    o.warmup_steps = 10;
    auto l1 = torch::randn({5, 3}, torch::kFloat64);
    auto l2 = torch::randn({5, 3}, torch::kFloat64);
    auto u = ctrlu_kl_uncertainty(l1, l2, 1.0);
    auto lr = torch::rand({5}, torch::kFloat64);
    auto act = torch::rand({5}) > 0.3;
    const int64_t step = seed % 15;
    auto loss = ctrlu_reward_loss(lr, u, act, step, o).item<double>();
    double n = 0, wsum = 0, usum = 0;
    for (int i = 0; i < 5; ++i) {
      // KL loop
      double z1 = 0, z2 = 0;
      for (int c = 0; c < 3; ++c) {
        z1 += std::exp(l1[i][c].item<double>());
        z2 += std::exp(l2[i][c].item<double>());
      }
      double kl = 0;
      for (int c = 0; c < 3; ++c) {
        const double p1 = std::exp(l1[i][c].item<double>()) / z1, p2 = std::exp(l2[i][c].item<double>()) / z2;
        kl += p2 * std::log(p2 / p1);
      }
      EXPECT_NEAR(u[i].item<double>(), kl, 1e-10);
      EXPECT_GE(kl, -1e-12);
      if (!act[i].item<bool>()) continue;
      n += 1;
      wsum += lr[i].item<double>() * std::exp(-kl);
      usum += kl;
    }
    n = std::max(n, 1.0);
    const double s = std::min(1.0, step / 10.0) * 0.1;
    EXPECT_NEAR(loss, s * wsum / n + usum / n, 1e-10);
  }
  CtrlUOptions o;
  EXPECT_EQ(testing::read_yaml("  method: ensemble\n", o, read_ctrlu_options).size(), 1u);
}

}  // namespace
}  // namespace keel::rewards
