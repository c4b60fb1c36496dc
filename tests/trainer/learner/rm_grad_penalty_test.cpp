// Tests of trainer/learner/rm_grad_penalty.{h,cpp}: the spec D6 worked numbers, the discriminator
// BCE, the interpolation against an analytic gradient and a slow loop over random shapes, double
// backward into parameters checked by finite differences, and — on a tiny transformer run from
// interpolated input embeddings — the gradient norm against finite differences and the fp32 path
// (compat::TwiceDifferentiableAttention) against fp64.
#include "trainer/learner/rm_grad_penalty.h"

#include <cmath>
#include <random>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "models/compat.h"
#include "models/embeds_forward.h"
#include "tests/models/test_util.h"

namespace keel::learner {
namespace {

torch::Tensor d(std::vector<double> v) { return torch::tensor(v, torch::kDouble); }

TEST(RmGradPenalty, SpecD6WorkedExamples) {
  GradPenaltyOptions o;  // λ = 10, k = 1, one-sided
  // ‖∇D‖ = 1.5: 10·(1.5 − 1)² = 10·0.25 = 2.5;  ‖∇D‖ = 0.8: max(0, −0.2)² = 0
  auto p = grad_penalty_from_norms(d({1.5, 0.8}), o);
  EXPECT_NEAR(p[0].item<double>(), 2.5, 1e-9);
  EXPECT_NEAR(p[1].item<double>(), 0.0, 1e-12);
  // two-sided: 0.8 → 10·(−0.2)² = 0.4; 1.5 → 2.5 still
  o.one_sided = false;
  p = grad_penalty_from_norms(d({1.5, 0.8}), o);
  EXPECT_NEAR(p[0].item<double>(), 2.5, 1e-9);
  EXPECT_NEAR(p[1].item<double>(), 0.4, 1e-9);
}

TEST(RmGradPenalty, DiscriminatorLossIsTwoBces) {
  // s_e = 0, s_a = 0: 2·log 2 = 1.3862944.  s_e = 2, s_a = −1: log(1 + e^−2) + log(1 + e^−1)
  //   = 0.1269280 + 0.3132617 = 0.4401897
  const auto l = discriminator_loss_per_pair(d({0, 2}), d({0, -1}));
  EXPECT_NEAR(l[0].item<double>(), 1.3862944, 1e-6);
  EXPECT_NEAR(l[1].item<double>(), 0.4401897, 1e-6);
  // the spec A6 reward of D = 0.75 (s = log 3): −log(1 − 0.75) = softplus(log 3) = log 4 = 1.3862944
  EXPECT_NEAR(torch::nn::functional::softplus(d({std::log(3.0)})).item<double>(), 1.3862944, 1e-6);
  EXPECT_THROW(discriminator_loss_per_pair(d({0, 1}), d({0})), c10::Error);
}

TEST(RmGradPenalty, InterpolationMatchesAnalyticGradientsOverRandomShapes) {
  // f(z) = Σ_j a_j z_j² per sample → ∇f = 2 a ⊙ ẑ, ‖∇f‖ computed by a loop.
  for (int seed = 0; seed < 50; ++seed) {
    torch::manual_seed(seed);
    const int64_t b = 1 + seed % 6, t = 1 + seed % 4, h = 1 + seed % 3;
    const auto ze = torch::randn({b, t, h}, torch::kDouble), za = torch::randn({b, t, h}, torch::kDouble);
    auto eps = torch::rand({b}, torch::kDouble);
    if (seed % 10 == 0) eps.fill_(0.0);  // ẑ = z_agent exactly
    if (seed % 10 == 1) eps.fill_(1.0);  // ẑ = z_expert exactly
    const auto a = torch::randn({t, h}, torch::kDouble) * 2;
    GradPenaltyOptions o;
    o.one_sided = seed % 2 == 0;
    o.target = 0.5 * (seed % 3);
    const auto out = interpolated_grad_penalty([&](const torch::Tensor& z) { return (a * z * z).sum({1, 2}); }, ze, za,
                                               eps, o);
    for (int64_t i = 0; i < b; ++i) {
      double sq = 0;
      const double e = eps[i].item<double>();
      for (int64_t x = 0; x < t; ++x)
        for (int64_t y = 0; y < h; ++y) {
          const double zh = e * ze[i][x][y].item<double>() + (1 - e) * za[i][x][y].item<double>();
          const double g = 2 * a[x][y].item<double>() * zh;
          sq += g * g;
        }
      const double n = std::sqrt(sq + 1e-12);
      double gap = n - o.target;
      if (o.one_sided) gap = std::max(gap, 0.0);
      EXPECT_NEAR(out.grad_norms[i].item<double>(), n, 1e-9) << "seed " << seed << " row " << i;
      EXPECT_NEAR(out.penalty[i].item<double>(), o.lambda * gap * gap, 1e-7) << "seed " << seed << " row " << i;
    }
  }
}

TEST(RmGradPenalty, PenaltyBackpropagatesIntoParameters) {
  // f(z) = tanh(z · w) per sample; d penalty / d w by double backward vs central differences.
  torch::manual_seed(3);
  const auto ze = torch::randn({3, 4}, torch::kDouble), za = torch::randn({3, 4}, torch::kDouble);
  const auto eps = d({0.2, 0.5, 0.9});
  GradPenaltyOptions o;
  o.target = 0.1;  // make the penalty active
  auto w = (torch::randn({4}, torch::kDouble) * 2).requires_grad_(true);
  auto pen = [&](const torch::Tensor& wv) {
    return interpolated_grad_penalty([&](const torch::Tensor& z) { return torch::tanh(z.matmul(wv)); }, ze, za, eps, o)
        .penalty.sum();
  };
  pen(w).backward();
  ASSERT_TRUE(w.grad().defined());
  const double h = 1e-6;
  for (int64_t j = 0; j < 4; ++j) {
    auto wp = w.detach().clone(), wm = w.detach().clone();
    wp[j] += h;
    wm[j] -= h;
    const double fd = (pen(wp).item<double>() - pen(wm).item<double>()) / (2 * h);
    EXPECT_NEAR(w.grad()[j].item<double>(), fd, 1e-5 * std::max(1.0, std::abs(fd))) << j;
  }
}

/// The last-token reward of a tiny reward model run from embeddings z [B, T, H] with a left-padded mask.
torch::Tensor tiny_score(models::Transformer& m, const torch::Tensor& z, const torch::Tensor& mask) {
  const auto hidden = models::forward_hidden_from_embeds(m, z, mask);  // [B, T, H]
  return m.rewards(hidden.narrow(1, hidden.size(1) - 1, 1)).squeeze(1);
}

TEST(RmGradPenalty, TinyTransformerGradNormMatchesFiniteDifferences) {
  auto cfg = models::testing::tiny_config();
  models::Transformer m(cfg, {/*lm_head=*/false, /*value_head=*/false, /*reward_head=*/true});
  models::testing::randomize(m, 7);
  m.to(torch::kCPU, torch::kDouble);
  const auto ids_e = torch::tensor({{0, 5, 6, 7}, {9, 10, 11, 12}}, torch::kLong);
  const auto ids_a = torch::tensor({{3, 4, 8, 13}, {0, 0, 14, 15}}, torch::kLong);
  // Masks: left padding; the interpolate's mask is the union (see cmd_train_rm.cpp).
  const auto mask = torch::tensor({{0, 1, 1, 1}, {1, 1, 1, 1}}, torch::kLong);
  torch::NoGradGuard ng0;
  const auto ze = models::embed_tokens(m, ids_e).detach(), za = models::embed_tokens(m, ids_a).detach();
  const auto eps = d({0.3, 0.7});
  GradPenaltyOptions o;
  o.one_sided = false;
  torch::Tensor norms;
  {
    c10::AutoGradMode on(true);
    norms = interpolated_grad_penalty([&](const torch::Tensor& z) { return tiny_score(m, z, mask); }, ze, za, eps, o)
                .grad_norms;
  }
  // Finite differences of f along each coordinate of ẑ: ‖∇f‖ from the difference quotients. The
  // fp64 model still normalises (RMSNorm) and takes the softmax in fp32, so f carries ~1e-7 relative
  // noise: h = 1e-3 keeps the quotient's error near 1e-4 (truncation O(h²) is smaller).
  const auto zh = eps.view({2, 1, 1}) * ze + (1 - eps.view({2, 1, 1})) * za;
  const double h = 1e-3;
  for (int64_t i = 0; i < 2; ++i) {
    double sq = 0;
    for (int64_t x = 0; x < zh.size(1); ++x)
      for (int64_t y = 0; y < zh.size(2); ++y) {
        auto p = zh.clone(), q = zh.clone();
        p[i][x][y] += h;
        q[i][x][y] -= h;
        const double g = (tiny_score(m, p, mask)[i].item<double>() - tiny_score(m, q, mask)[i].item<double>()) / (2 * h);
        sq += g * g;
      }
    EXPECT_NEAR(norms[i].item<double>(), std::sqrt(sq), 1e-3 * std::max(1.0, std::sqrt(sq))) << "row " << i;
    EXPECT_GT(norms[i].item<double>(), 1e-3) << "row " << i;  // the check is not vacuous
  }
}

TEST(RmGradPenalty, Fp32TwiceDifferentiableAttentionMatchesFp64) {
  // The penalty's parameter gradients need double backward through attention. In fp32 on LibTorch
  // 1.13 attention is a hand-written Function without it; under the guard it runs as plain ops.
  auto cfg = models::testing::tiny_config();
  models::Transformer m32(cfg, {false, false, true});
  models::testing::randomize(m32, 11);
  auto m64 = m32.clone();
  m64.to(torch::kCPU, torch::kDouble);
  const auto ids_e = torch::tensor({{5, 6, 7, 8, 9}}, torch::kLong), ids_a = torch::tensor({{0, 0, 21, 22, 23}}, torch::kLong);
  const auto mask = torch::tensor({{1, 1, 1, 1, 1}}, torch::kLong);
  GradPenaltyOptions o;
  o.target = 0.0;  // always active
  auto penalty_grads = [&](models::Transformer& m) {
    const auto ze = models::embed_tokens(m, ids_e).detach(), za = models::embed_tokens(m, ids_a).detach();
    const compat::TwiceDifferentiableAttention plain;
    const auto out = interpolated_grad_penalty([&](const torch::Tensor& z) { return tiny_score(m, z, mask); }, ze, za,
                                               torch::tensor({0.4}, torch::kDouble), o);
    for (auto& p : m.parameters()) p.mutable_grad() = torch::Tensor();
    out.penalty.sum().backward();
    return m.named_parameters();
  };
  EXPECT_FALSE(compat::TwiceDifferentiableAttention::active());
  const auto g32 = penalty_grads(m32);
  EXPECT_FALSE(compat::TwiceDifferentiableAttention::active());  // the guard restored the fast path
  const auto g64 = penalty_grads(m64);
  // q_proj only influences the score through attention: its gradient exists only by double backward
  // through the attention probabilities.
  for (const char* name : {"model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.up_proj.weight", "score.weight"}) {
    const auto a = g32.at(name).grad(), b = g64.at(name).grad();
    ASSERT_TRUE(a.defined() && b.defined()) << name;
    const double scale = b.abs().max().item<double>();
    EXPECT_GT(scale, 1e-6) << name;
    EXPECT_LT((a.to(torch::kDouble) - b).abs().max().item<double>(), 1e-3 * scale) << name;
  }
}

}  // namespace
}  // namespace keel::learner
