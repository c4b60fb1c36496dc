// Tests of trainer/learner/rm_odin_loss.{h,cpp}: one ODIN example computed by hand, a slow loop
// reference (BT on the head sum, Pearson terms, head cosine) over random seeds and sizes including
// constant lengths and a single pair, finite-difference gradients, term_scale, argument checks.
#include "trainer/learner/rm_odin_loss.h"

#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace keel::learner {
namespace {

torch::Tensor d(std::vector<double> v) { return torch::tensor(v, torch::kDouble); }

OdinLossInputs hand_example() {
  OdinLossInputs in;
  in.chosen_quality = d({0, 1});
  in.rejected_quality = d({2, 1});
  in.chosen_length = d({0.5, 0});
  in.rejected_length = d({0, 0});
  in.chosen_tokens = d({3, 1});
  in.rejected_tokens = d({1, 3});
  in.quality_head = d({3, 4});
  in.length_head = d({1, 0}).unsqueeze(0);  // [1, H] like a Linear weight
  return in;
}

TEST(RmOdinLoss, HandComputedExample) {
  // Sums r_Q + r_L: chosen [0.5, 1], rejected [2, 1] → Δ = [−1.5, 0]
  //   BT = (−logσ(−1.5) − logσ(0)) / 2 = (1.7014133 + 0.6931472) / 2 = 1.1972802
  // r_Q over the 4 responses [0, 1, 2, 1] (mean 1) vs len [3, 1, 1, 3] (mean 2):
  //   centred [−1, 0, 1, 0] · [1, −1, −1, 1] = −2; Σx² = 2, Σy² = 4 → ρ_Q = −2/√8 = −0.7071068
  // r_L [0.5, 0, 0, 0] (mean 0.125): centred [0.375, −0.125, −0.125, −0.125] · [1, −1, −1, 1] = 0.5;
  //   Σx² = 0.1875 → ρ_L = 0.5/√(0.1875·4) = 0.5773503
  // heads w_Q = [3, 4], w_L = [1, 0]: |cos| = 3/(5·1) = 0.6
  // L = 1.1972802 + 1·(|−0.7071068| − 0.5773503) + 1·0.6 = 1.9270367
  const auto out = odin_loss(hand_example(), {});
  EXPECT_NEAR(out.loss.item<double>(), 1.9270367, 1e-6);
  EXPECT_NEAR(out.metrics.at("odin/quality_length_corr"), -0.7071068, 1e-6);
  EXPECT_NEAR(out.metrics.at("odin/length_head_corr"), 0.5773503, 1e-6);
  EXPECT_NEAR(out.metrics.at("odin/head_cosine"), 0.6, 1e-9);
  EXPECT_NEAR(out.metrics.at("rm/accuracy"), 0.0, 1e-12);          // Δ = −1.5 and 0: no win
  EXPECT_NEAR(out.metrics.at("rm/quality_accuracy"), 0.0, 1e-12);  // r_Q: 0 < 2, 1 = 1
  // Weights: length_weight 0.5, ortho_weight 2 → 1.1972802 + 0.5·0.1297565 + 2·0.6 = 2.4621585
  OdinLossOptions o;
  o.length_weight = 0.5;
  o.ortho_weight = 2.0;
  EXPECT_NEAR(odin_loss(hand_example(), o).loss.item<double>(), 2.4621585, 1e-6);
  // term_scale 0.5 halves the extra terms: 1.1972802 + 0.5·(0.1297565 + 0.6) = 1.5621585
  auto in = hand_example();
  in.term_scale = 0.5;
  EXPECT_NEAR(odin_loss(in, {}).loss.item<double>(), 1.5621585, 1e-6);
}

/// The obvious loops.
double pearson_loop(const std::vector<double>& x, const std::vector<double>& y) {
  const size_t n = x.size();
  double mx = 0, my = 0;
  for (size_t i = 0; i < n; ++i) mx += x[i] / static_cast<double>(n), my += y[i] / static_cast<double>(n);
  double c = 0, sx = 0, sy = 0;
  for (size_t i = 0; i < n; ++i) {
    c += (x[i] - mx) * (y[i] - my);
    sx += (x[i] - mx) * (x[i] - mx);
    sy += (y[i] - my) * (y[i] - my);
  }
  return c / std::sqrt(sx * sy + 1e-16);
}

std::vector<double> vec(const torch::Tensor& t) {
  const auto c = t.to(torch::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

double odin_loop(const OdinLossInputs& in, const OdinLossOptions& o) {
  const auto qc = vec(in.chosen_quality), qr = vec(in.rejected_quality), lc = vec(in.chosen_length),
             lr = vec(in.rejected_length), tc = vec(in.chosen_tokens), tr = vec(in.rejected_tokens),
             wq = vec(in.quality_head), wl = vec(in.length_head);
  const size_t b = qc.size();
  double bt = 0;
  for (size_t i = 0; i < b; ++i) bt += std::log1p(std::exp(-((qc[i] + lc[i]) - (qr[i] + lr[i])))) / static_cast<double>(b);
  std::vector<double> q = qc, l = lc, t = tc;
  q.insert(q.end(), qr.begin(), qr.end());
  l.insert(l.end(), lr.begin(), lr.end());
  t.insert(t.end(), tr.begin(), tr.end());
  double dot = 0, nq = 0, nl = 0;
  for (size_t j = 0; j < wq.size(); ++j) dot += wq[j] * wl[j], nq += wq[j] * wq[j], nl += wl[j] * wl[j];
  const double cosine = std::abs(dot) / (std::max(std::sqrt(nq), 1e-8) * std::max(std::sqrt(nl), 1e-8));
  return bt + o.length_weight * (std::abs(pearson_loop(q, t)) - pearson_loop(l, t)) + o.ortho_weight * cosine;
}

TEST(RmOdinLoss, MatchesLoopReferenceOverRandomInputs) {
  for (int seed = 0; seed < 60; ++seed) {
    torch::manual_seed(seed);
    std::mt19937 gen(static_cast<unsigned>(seed));
    const int64_t b = 1 + seed % 9, h = 1 + seed % 5;
    OdinLossInputs in;
    in.chosen_quality = torch::randn({b}, torch::kDouble);
    in.rejected_quality = torch::randn({b}, torch::kDouble);
    in.chosen_length = torch::randn({b}, torch::kDouble);
    in.rejected_length = torch::randn({b}, torch::kDouble);
    if (seed % 7 == 3) {  // every response the same length: ρ = 0, finite
      in.chosen_tokens = torch::full({b}, 5.0, torch::kDouble);
      in.rejected_tokens = torch::full({b}, 5.0, torch::kDouble);
    } else {
      in.chosen_tokens = torch::randint(1, 40, {b}, torch::kLong);
      in.rejected_tokens = torch::randint(1, 40, {b}, torch::kLong);
    }
    in.quality_head = torch::randn({1, h}, torch::kDouble);
    in.length_head = seed % 11 == 5 ? torch::zeros({1, h}, torch::kDouble) : torch::randn({1, h}, torch::kDouble);
    OdinLossOptions o;
    o.length_weight = std::uniform_real_distribution<double>(0, 2)(gen);
    o.ortho_weight = std::uniform_real_distribution<double>(0, 2)(gen);
    const auto out = odin_loss(in, o);
    EXPECT_TRUE(std::isfinite(out.loss.item<double>())) << "seed " << seed;
    EXPECT_NEAR(out.loss.item<double>(), odin_loop(in, o), 1e-9) << "seed " << seed << " B " << b;
    auto rq = torch::cat({in.chosen_quality, in.rejected_quality});
    auto len = torch::cat({in.chosen_tokens, in.rejected_tokens}).to(torch::kDouble);
    EXPECT_NEAR(pearson_correlation(rq, len).item<double>(), pearson_loop(vec(rq), vec(len)), 1e-12) << seed;
  }
}

TEST(RmOdinLoss, GradientsMatchFiniteDifferences) {
  torch::manual_seed(1);
  auto in = hand_example();
  in.chosen_tokens = d({7, 2});
  in.rejected_tokens = d({4, 9});
  auto leaves = std::vector<torch::Tensor>{torch::randn({2}, torch::kDouble), torch::randn({2}, torch::kDouble),
                                           torch::randn({2}, torch::kDouble), torch::randn({2}, torch::kDouble),
                                           torch::randn({3}, torch::kDouble), torch::randn({1, 3}, torch::kDouble)};
  auto build = [&](const std::vector<torch::Tensor>& v) {
    OdinLossInputs x = in;
    x.chosen_quality = v[0], x.rejected_quality = v[1], x.chosen_length = v[2], x.rejected_length = v[3];
    x.quality_head = v[4], x.length_head = v[5];
    return odin_loss(x, {}).loss;
  };
  for (auto& t : leaves) t.requires_grad_(true);
  build(leaves).backward();
  const double h = 1e-6;
  for (size_t k = 0; k < leaves.size(); ++k) {
    for (int64_t j = 0; j < leaves[k].numel(); ++j) {
      std::vector<torch::Tensor> plus, minus;
      for (const auto& t : leaves) plus.push_back(t.detach().clone()), minus.push_back(t.detach().clone());
      plus[k].view({-1})[j] += h;
      minus[k].view({-1})[j] -= h;
      const double fd = (build(plus).item<double>() - build(minus).item<double>()) / (2 * h);
      EXPECT_NEAR(leaves[k].grad().view({-1})[j].item<double>(), fd, 1e-6) << "leaf " << k << " entry " << j;
    }
  }
}

TEST(RmOdinLoss, ChecksArguments) {
  auto in = hand_example();
  in.chosen_tokens = d({1, 2, 3});
  EXPECT_THROW(odin_loss(in, {}), c10::Error);
  in = hand_example();
  in.length_head = torch::zeros({2, 2}, torch::kDouble);
  EXPECT_THROW(odin_loss(in, {}), c10::Error);
  in = hand_example();
  in.length_head = d({1, 0, 0});
  EXPECT_THROW(odin_loss(in, {}), c10::Error);
  OdinLossOptions o;
  o.length_weight = -1;
  EXPECT_THROW(odin_loss(hand_example(), o), c10::Error);
}

}  // namespace
}  // namespace keel::learner
