// Tests of trainer/learner/kl.{h,cpp}: spec §1.4 worked example, straight-through gradients, loop
// reference, KL in reward and the fixed / adaptive controller with state save / restore.
#include "trainer/learner/kl.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/trainer/learner/loss_test_util.h"
#include "base/error.h"

namespace keel::learner {
namespace {

constexpr KlEstimator kAll[] = {KlEstimator::kK1,     KlEstimator::kK2,     KlEstimator::kK3,    KlEstimator::kK1Plus,
                                KlEstimator::kK2Plus, KlEstimator::kK3Plus, KlEstimator::kAbs};

TEST(Kl, SpecWorkedExample) {
  // logp = −1.0, logp_ref = −1.5, Δ = 0.5: k1 = 0.5, k2 = ½·0.25 = 0.125, k3 = e^{−0.5} − 1 + 0.5 = 0.106531
  const torch::Tensor ref = torch::full({1, 1}, -1.5, torch::kDouble);
  const std::map<KlEstimator, double> want = {{KlEstimator::kK1, 0.5},     {KlEstimator::kK2, 0.125},
                                              {KlEstimator::kK3, 0.106531}, {KlEstimator::kK1Plus, 0.5},
                                              {KlEstimator::kK2Plus, 0.125}, {KlEstimator::kK3Plus, 0.106531}};
  for (auto [est, value] : want) {
    const torch::Tensor logp = torch::full({1, 1}, -1.0, torch::kDouble).requires_grad_(true);
    const torch::Tensor kl = kl_penalty(logp, ref, est);
    EXPECT_NEAR(kl.item<double>(), value, 1e-4) << kl_estimator_name(est);
    const double g = torch::autograd::grad({kl.sum()}, {logp})[0].item<double>();
    // d/dlogp: k1 → 1; k2 and every straight-through form → Δ = 0.5; k3 → 1 − e^{−Δ} = 0.393469
    const double want_g = est == KlEstimator::kK1 ? 1.0 : est == KlEstimator::kK3 ? 1.0 - std::exp(-0.5) : 0.5;
    EXPECT_NEAR(g, want_g, 1e-9) << kl_estimator_name(est);
  }
}

TEST(Kl, AbsHandExamples) {
  // spec §1.4 abs = |Δ|, Δ = logp − logp_ref, gradient sign(Δ) w.r.t. logp.
  // logp = −1.0, ref = −1.5: Δ = 0.5 → 0.5, d/dlogp = +1.  logp = −2.0, ref = −1.25: Δ = −0.75 → 0.75, −1.
  // Δ = 0 → 0 with gradient 0 (torch's abs), so a policy at the reference feels no KL pull.
  const torch::Tensor logp = torch::tensor({{-1.0, -2.0, -0.5}}, torch::kDouble).requires_grad_(true);
  const torch::Tensor ref = torch::tensor({{-1.5, -1.25, -0.5}}, torch::kDouble);
  const torch::Tensor kl = kl_penalty(logp, ref, KlEstimator::kAbs);
  EXPECT_TRUE(torch::allclose(kl, torch::tensor({{0.5, 0.75, 0.0}}, torch::kDouble), 0, 1e-15));
  const torch::Tensor g = torch::autograd::grad({kl.sum()}, {logp})[0];
  EXPECT_TRUE(torch::equal(g, torch::tensor({{1.0, -1.0, 0.0}}, torch::kDouble)));
  // No clamp (verl's abs has none): Δ = 30 stays 30, where k3 would clamp.
  EXPECT_EQ(kl_penalty(torch::full({1, 1}, 10.0, torch::kDouble), torch::full({1, 1}, -20.0, torch::kDouble),
                       KlEstimator::kAbs).item<double>(), 30.0);
}

TEST(Kl, NamesRoundTripAndUnknownThrows) {
  for (KlEstimator est : kAll) EXPECT_EQ(parse_kl_estimator(kl_estimator_name(est)), est);
  EXPECT_THROW(parse_kl_estimator("low_var_kl"), keel::Error);
  // The one table that parsing, `keel list kl` and the config's known names read.
  std::vector<std::string> names;
  for (const auto& e : kl_estimators()) {
    names.push_back(e.name);
    EXPECT_FALSE(std::string(e.description).empty()) << e.name;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"k1", "k2", "k3", "k1+", "k2+", "k3+", "abs"}));
  try {
    parse_kl_estimator("ab");
    FAIL() << "no error";
  } catch (const keel::Error& e) {
    EXPECT_NE(std::string(e.what()).find("(known: k1, k2, k3, k1+, k2+, k3+, abs)"), std::string::npos) << e.what();
  }
}

TEST(Kl, MatchesLoopReferenceAndFiniteDifferences) {
  for (uint64_t seed = 0; seed < 60; ++seed) {
    torch::manual_seed(seed);
    const int64_t n = 1 + seed % 4, t = 1 + (seed * 5) % 7;
    // Wide Δ range so that k3's ±20 inner and ±10 outer clamps are exercised.
    const double scale = seed % 5 == 0 ? 15.0 : 1.0;
    const torch::Tensor logp = torch::randn({n, t}, torch::kDouble) * scale;
    const torch::Tensor ref = torch::randn({n, t}, torch::kDouble) * scale;
    const auto lp = testing::to_mat(logp), rf = testing::to_mat(ref);
    for (KlEstimator est : kAll) {
      const auto got = testing::to_mat(kl_penalty(logp, ref, est));
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < t; ++j)
          EXPECT_NEAR(got[i][j], testing::ref_kl(lp[i][j], rf[i][j], est), 1e-10)
              << "seed " << seed << " " << kl_estimator_name(est);
    }
    if (scale == 1.0) {
      for (KlEstimator est : {KlEstimator::kK1, KlEstimator::kK2, KlEstimator::kK3, KlEstimator::kAbs})
        testing::expect_grad_matches_fd([&](const torch::Tensor& x) { return kl_penalty(x, ref, est).sum(); }, logp);
      // Straight-through forms: gradient is exactly k2's, Δ.
      for (KlEstimator est : {KlEstimator::kK1Plus, KlEstimator::kK3Plus}) {
        const torch::Tensor x = logp.clone().requires_grad_(true);
        const torch::Tensor g = torch::autograd::grad({kl_penalty(x, ref, est).sum()}, {x})[0];
        EXPECT_TRUE(torch::allclose(g, logp - ref, 1e-12, 1e-12));
      }
    }
  }
}

TEST(Kl, InRewardHandExample) {
  // k1, β = 0.5. Row 0: logp_old − logp_ref = [0.2, 0.0], both valid; row 1: [0.4, 9], 2nd masked.
  const torch::Tensor r = torch::tensor({{0.0, 1.0}, {0.0, 0.0}}, torch::kDouble);
  const torch::Tensor old = torch::tensor({{-1.0, -2.0}, {-1.0, 5.0}}, torch::kDouble);
  const torch::Tensor ref = torch::tensor({{-1.2, -2.0}, {-1.4, -4.0}}, torch::kDouble);
  const torch::Tensor m = torch::tensor({{1.0, 1.0}, {1.0, 0.0}}, torch::kDouble);
  const auto out = apply_kl_in_reward(r, old, ref, m, KlEstimator::kK1, 0.5);
  // r − 0.5·m·KL = [[−0.1, 1.0], [−0.2, 0.0]]
  EXPECT_TRUE(torch::allclose(out.token_rewards, torch::tensor({{-0.1, 1.0}, {-0.2, 0.0}}, torch::kDouble), 1e-12, 1e-12));
  // per-row masked means 0.1 and 0.4 → batch mean 0.25
  EXPECT_NEAR(out.current_kl, 0.25, 1e-12);
  EXPECT_NEAR(out.metrics.at("actor/reward_kl_penalty"), 0.25, 1e-12);
  EXPECT_EQ(out.metrics.at("actor/reward_kl_penalty_coeff"), 0.5);
}

TEST(Kl, InRewardMatchesLoopReference) {
  for (uint64_t seed = 0; seed < 50; ++seed) {
    const auto b = testing::rand_batch(seed);
    const torch::Tensor r = torch::randn({b.n, b.t}, torch::kDouble);
    for (KlEstimator est : {KlEstimator::kK1, KlEstimator::kK2, KlEstimator::kK3, KlEstimator::kAbs}) {
      const double coef = 0.1 + 0.01 * static_cast<double>(seed);
      const auto out = apply_kl_in_reward(r, b.logp_old, b.logp_ref, b.mask, est, coef);
      const auto rr = testing::to_mat(r), lo = testing::to_mat(b.logp_old), lr = testing::to_mat(b.logp_ref),
                 m = testing::to_mat(b.mask), got = testing::to_mat(out.token_rewards);
      double kl_sum = 0, rows = 0;
      for (int64_t i = 0; i < b.n; ++i) {
        double row = 0, len = 0;
        for (int64_t j = 0; j < b.t; ++j) {
          const double kl = m[i][j] > 0 ? testing::ref_kl(lo[i][j], lr[i][j], est) : 0.0;
          EXPECT_NEAR(got[i][j], rr[i][j] - coef * kl, 1e-10) << "seed " << seed;
          row += kl;
          len += m[i][j];
        }
        if (len > 0) {
          kl_sum += row / len;
          rows += 1;
        }
      }
      EXPECT_NEAR(out.current_kl, rows > 0 ? kl_sum / rows : 0.0, 1e-10) << "seed " << seed;
      EXPECT_FALSE(out.token_rewards.requires_grad());
    }
  }
}

TEST(KlController, FixedNeverMoves) {
  auto c = KlController::fixed(0.001);
  c.update(5.0, 1024);
  EXPECT_EQ(c.value(), 0.001);
  EXPECT_FALSE(c.is_adaptive());
}

TEST(KlController, AdaptiveHandSteps) {
  auto c = KlController::adaptive(0.1, /*target=*/0.1, /*horizon=*/10000);
  // KL 0.15: e = clip(0.15/0.1 − 1, ±0.2) = 0.2 → β = 0.1·(1 + 0.2·256/10000) = 0.100512
  c.update(0.15, 256);
  EXPECT_NEAR(c.value(), 0.100512, 1e-12);
  // KL 0.09: e = −0.1 → β = 0.100512·(1 − 0.1·1000/10000) = 0.100512·0.99 = 0.09950688
  c.update(0.09, 1000);
  EXPECT_NEAR(c.value(), 0.09950688, 1e-12);
  // KL 0: e clipped to −0.2 → β·(1 − 0.2·10000/10000) = 0.8·β
  c.update(0.0, 10000);
  EXPECT_NEAR(c.value(), 0.09950688 * 0.8, 1e-12);
}

TEST(KlController, StateSaveRestore) {
  auto a = KlController::from_config("adaptive", 0.05, 0.1, 100);
  a.update(1.0, 10);  // β = 0.05·(1 + 0.2·10/100) = 0.051
  EXPECT_NEAR(a.value(), 0.051, 1e-12);
  const auto state = a.state();
  auto b = KlController::from_config("adaptive", 0.05, 0.1, 100);
  b.load_state(state);
  EXPECT_EQ(b.value(), a.value());
  a.update(0.5, 10);
  b.update(0.5, 10);
  EXPECT_EQ(b.value(), a.value());
  EXPECT_THROW(b.load_state({}), keel::Error);
  EXPECT_THROW(b.load_state({{"kl_ctl/value", -1.0}}), keel::Error);
  EXPECT_THROW(KlController::from_config("pid", 0.1, 0.1, 1), keel::Error);
  EXPECT_THROW(KlController::adaptive(0.1, 0.0, 1), keel::Error);
}

}  // namespace
}  // namespace keel::learner
