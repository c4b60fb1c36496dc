// Tests of trainer/learner/rm_loss.{h,cpp}: spec D1 / D2 worked examples, a slow loop reference over
// random seeds and shapes (margins, smoothing, Reg, empty and single-pair batches), finite-difference
// gradients, micro-batch additivity through the denominator, and argument checks.
#include "trainer/learner/rm_loss.h"

#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace keel::learner {
namespace {

RmLossInputs pair(double rc, double rr, double m = std::nan("")) {
  RmLossInputs in;
  in.chosen_rewards = torch::tensor({rc}, torch::kDouble);
  in.rejected_rewards = torch::tensor({rr}, torch::kDouble);
  if (!std::isnan(m)) in.margins = torch::tensor({m}, torch::kDouble);
  return in;
}

double loss_of(const RmLossInputs& in, const RmLossOptions& o) { return bt_loss(in, o).loss.item<double>(); }

TEST(RmLoss, SpecD1WorkedExamples) {
  // r_c = 1.0, r_r = −0.5 → Δ = 1.5
  RmLossOptions o;
  // −logσ(1.5) = log(1 + e^−1.5) = log(1.2231302) = 0.2014133
  EXPECT_NEAR(loss_of(pair(1.0, -0.5), o), 0.2014133, 1e-6);
  // Reg λ = 0.005: 0.2014133 + 0.005·(1² + 0.5²) = 0.2014133 + 0.00625 = 0.2076633
  o.reg_lambda = 0.005;
  EXPECT_NEAR(loss_of(pair(1.0, -0.5), o), 0.2076633, 1e-6);
  // margin m = 1: −logσ(1.5 − 1) = −logσ(0.5) = log(1 + e^−0.5) = 0.4740770
  o = {};
  EXPECT_NEAR(loss_of(pair(1.0, -0.5, 1.0), o), 0.4740770, 1e-6);
  // label smoothing α = 0.1: 0.9·logσ-loss(1.5) + 0.1·(−logσ(−1.5)) = 0.9·0.2014133 + 0.1·1.7014133
  //   = 0.1812720 + 0.1701413 = 0.3514133
  o.label_smoothing = 0.1;
  EXPECT_NEAR(loss_of(pair(1.0, -0.5), o), 0.3514133, 1e-6);
}

TEST(RmLoss, SpecD2WorkedExample) {
  // d = [1, 2, 3] from three RMs (chosen = d, rejected = 0) → μ̂ = 2, σ̂ = sqrt((1 + 0 + 1)/3) = 0.8164966
  const auto chosen = torch::tensor({1.0, 2.0, 3.0}, torch::kDouble).unsqueeze(1);  // [M=3, B=1]
  const auto s = preference_strength(chosen, torch::zeros_like(chosen));
  EXPECT_NEAR(s.mean.item<double>(), 2.0, 1e-9);
  EXPECT_NEAR(s.std.item<double>(), 0.8164966, 1e-6);
  // adaptive margin with Δ = 2.5: −logσ(2.5 − μ̂) = −logσ(0.5) = 0.4740770
  RmLossInputs in;
  in.chosen_rewards = torch::tensor({2.5}, torch::kDouble);
  in.rejected_rewards = torch::tensor({0.0}, torch::kDouble);
  in.margins = s.mean;
  EXPECT_NEAR(loss_of(in, {}), 0.4740770, 1e-6);
}

TEST(RmLoss, MetricsCountWinsAndMargins) {
  RmLossInputs in;
  // Δ = [1, −1, 2, 0] → accuracy 2/4 (0 is not a win), margin mean 0.5
  in.chosen_rewards = torch::tensor({1.0, 0.0, 3.0, 1.0}, torch::kDouble);
  in.rejected_rewards = torch::tensor({0.0, 1.0, 1.0, 1.0}, torch::kDouble);
  const auto out = bt_loss(in, {});
  EXPECT_DOUBLE_EQ(out.metrics.at("rm/accuracy"), 0.5);
  EXPECT_DOUBLE_EQ(out.metrics.at("rm/margin_mean"), 0.5);
  EXPECT_DOUBLE_EQ(out.metrics.at("rm/chosen_mean"), 1.25);
  EXPECT_DOUBLE_EQ(out.metrics.at("rm/rejected_mean"), 0.75);
  EXPECT_DOUBLE_EQ(out.metrics.at("rm/loss"), out.loss.item<double>());
}

// ---- slow loop reference ------------------------------------------------------------------------

/// −log σ(z) as written in textbooks, guarded only against overflow: log(1 + e^−z).
double neg_log_sigmoid_ref(double z) { return z > 0 ? std::log1p(std::exp(-z)) : -z + std::log1p(std::exp(z)); }

double bt_ref(const std::vector<double>& rc, const std::vector<double>& rr, const std::vector<double>& m, double alpha,
              double lambda, double denom) {
  double sum = 0;
  for (size_t i = 0; i < rc.size(); ++i) {
    const double mi = m.empty() ? 0.0 : m[i];
    const double d = rc[i] - rr[i];
    double l = (1 - alpha) * neg_log_sigmoid_ref(d - mi) + alpha * neg_log_sigmoid_ref((rr[i] - rc[i]) - mi);
    l += lambda * (rc[i] * rc[i] + rr[i] * rr[i]);
    sum += l;
  }
  return sum / (denom > 0 ? denom : std::max<double>(1, static_cast<double>(rc.size())));
}

TEST(RmLoss, MatchesLoopReferenceOverRandomSeeds) {
  for (int seed = 0; seed < 80; ++seed) {
    std::mt19937 gen(seed);
    std::uniform_int_distribution<int> nb(0, 9);
    const int b = seed < 3 ? seed : nb(gen);  // seeds 0..2: empty batch, one pair, two pairs
    // Scores up to ±40 (seed % 5 == 0) exercise the stable softplus on saturated pairs.
    const double scale = seed % 5 == 0 ? 40.0 : 3.0;
    std::normal_distribution<double> nd(0.0, scale);
    std::vector<double> rc(b), rr(b), m;
    for (int i = 0; i < b; ++i) rc[i] = nd(gen), rr[i] = nd(gen);
    if (seed % 2 == 1) {
      std::uniform_real_distribution<double> md(-1.0, 3.0);
      for (int i = 0; i < b; ++i) m.push_back(md(gen));
    }
    RmLossOptions o;
    o.label_smoothing = (seed % 3 == 0) ? 0.0 : 0.05 * (seed % 9);
    o.reg_lambda = (seed % 4 == 0) ? 0.005 * (seed % 7) : 0.0;
    RmLossInputs in;
    in.chosen_rewards = torch::tensor(rc, torch::kDouble);
    in.rejected_rewards = torch::tensor(rr, torch::kDouble);
    if (!m.empty()) in.margins = torch::tensor(m, torch::kDouble);
    in.denominator = seed % 6 == 5 ? 17.0 : 0.0;
    const auto out = bt_loss(in, o);
    const double ref = bt_ref(rc, rr, m, o.label_smoothing, o.reg_lambda, in.denominator);
    EXPECT_NEAR(out.loss.item<double>(), ref, 1e-9 * std::max(1.0, std::abs(ref))) << "seed " << seed;
    EXPECT_TRUE(std::isfinite(out.loss.item<double>())) << "seed " << seed;
    if (b > 0) {
      int wins = 0;
      for (int i = 0; i < b; ++i) wins += rc[i] > rr[i];
      EXPECT_NEAR(out.metrics.at("rm/accuracy"), static_cast<double>(wins) / b, 1e-12) << "seed " << seed;
    }
  }
}

TEST(RmLoss, PreferenceStrengthMatchesLoopReference) {
  for (int seed = 0; seed < 60; ++seed) {
    torch::manual_seed(1000 + seed);
    const int mm = 1 + seed % 6, b = 1 + (seed * 7) % 11;
    const auto chosen = torch::randn({mm, b}, torch::TensorOptions().dtype(torch::kDouble)) * (1 + seed % 3);
    const auto rejected = torch::randn({mm, b}, torch::TensorOptions().dtype(torch::kDouble));
    const auto s = preference_strength(chosen, rejected);
    ASSERT_EQ(s.mean.sizes(), torch::IntArrayRef({b}));
    for (int i = 0; i < b; ++i) {
      double mu = 0;
      for (int k = 0; k < mm; ++k) mu += chosen[k][i].item<double>() - rejected[k][i].item<double>();
      mu /= mm;
      double var = 0;
      for (int k = 0; k < mm; ++k) {
        const double d = chosen[k][i].item<double>() - rejected[k][i].item<double>() - mu;
        var += d * d;
      }
      EXPECT_NEAR(s.mean[i].item<double>(), mu, 1e-12) << "seed " << seed;
      EXPECT_NEAR(s.std[i].item<double>(), std::sqrt(var / mm), 1e-12) << "seed " << seed;
    }
  }
}

// ---- gradients, micro-batching, checks -----------------------------------------------------------

TEST(RmLoss, GradientMatchesFiniteDifferences) {
  torch::manual_seed(7);
  RmLossOptions o;
  o.label_smoothing = 0.1;
  o.reg_lambda = 0.01;
  const auto rc0 = torch::randn({5}, torch::kDouble) * 2;
  const auto rr0 = torch::randn({5}, torch::kDouble) * 2;
  const auto m = torch::rand({5}, torch::kDouble);
  auto eval = [&](const torch::Tensor& rc, const torch::Tensor& rr) {
    RmLossInputs in;
    in.chosen_rewards = rc;
    in.rejected_rewards = rr;
    in.margins = m;
    return bt_loss(in, o).loss;
  };
  auto rc = rc0.clone().requires_grad_(true);
  auto rr = rr0.clone().requires_grad_(true);
  eval(rc, rr).backward();
  const double h = 1e-6;
  for (int i = 0; i < 5; ++i) {
    auto plus = rc0.clone(), minus = rc0.clone();
    plus[i] += h, minus[i] -= h;
    const double fd_c = (eval(plus, rr0).item<double>() - eval(minus, rr0).item<double>()) / (2 * h);
    EXPECT_NEAR(rc.grad()[i].item<double>(), fd_c, 1e-7) << i;
    plus = rr0.clone(), minus = rr0.clone();
    plus[i] += h, minus[i] -= h;
    const double fd_r = (eval(rc0, plus).item<double>() - eval(rc0, minus).item<double>()) / (2 * h);
    EXPECT_NEAR(rr.grad()[i].item<double>(), fd_r, 1e-7) << i;
  }
}

TEST(RmLoss, MicroBatchesSumToTheMiniBatchMean) {
  torch::manual_seed(3);
  const auto rc = torch::randn({6}, torch::kDouble), rr = torch::randn({6}, torch::kDouble);
  RmLossInputs full{rc, rr, {}, 0};
  const double whole = bt_loss(full, {}).loss.item<double>();
  double parts = 0;
  for (int s = 0; s < 6; s += 4) {
    const int e = std::min(6, s + 4);
    RmLossInputs part{rc.slice(0, s, e), rr.slice(0, s, e), {}, 6.0};
    parts += bt_loss(part, {}).loss.item<double>();
  }
  EXPECT_NEAR(parts, whole, 1e-12);
}

TEST(RmLoss, RejectsBadArguments) {
  RmLossInputs in = pair(1, 0);
  in.rejected_rewards = torch::zeros({2}, torch::kDouble);
  EXPECT_THROW(bt_loss(in, {}), c10::Error);
  RmLossOptions o;
  o.label_smoothing = 0.5;
  EXPECT_THROW(bt_loss(pair(1, 0), o), c10::Error);
  EXPECT_THROW(preference_strength(torch::zeros({3}), torch::zeros({3})), c10::Error);
  EXPECT_THROW(preference_strength(torch::zeros({2, 3}), torch::zeros({3, 2})), c10::Error);
}

}  // namespace
}  // namespace keel::learner
