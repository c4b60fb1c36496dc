// Tests of trainer/learner/value_loss.{h,cpp}: spec §1.3 worked example, loop reference, gradient
// check and micro-batch invariance.
#include "trainer/learner/value_loss.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/trainer/learner/loss_test_util.h"

namespace keel::learner {
namespace {

TEST(ValueLoss, SpecWorkedExample) {
  // vpred 1.0, V_old 0.5, ret 1.2, ε_v 0.2 → vclip 0.7; ℓ = max(0.2², 0.5²) = 0.25; L = 0.5·0.25 = 0.125
  ValueLossInputs in;
  in.values = torch::full({1, 1}, 1.0, torch::kDouble).requires_grad_(true);
  in.values_old = torch::full({1, 1}, 0.5, torch::kDouble);
  in.returns = torch::full({1, 1}, 1.2, torch::kDouble);
  in.response_mask = torch::ones({1, 1}, torch::kDouble);
  in.agg = AggContext::from_mask(in.response_mask);
  const auto out = value_loss(in, {0.2, {}});
  EXPECT_NEAR(out.loss.item<double>(), 0.125, 1e-4);
  EXPECT_NEAR(out.metrics.at("critic/vf_loss"), 0.125, 1e-4);
  EXPECT_EQ(out.metrics.at("critic/vf_clipfrac"), 1.0);
  // The clipped branch is constant in vpred → zero gradient.
  EXPECT_EQ(torch::autograd::grad({out.loss}, {in.values})[0].item<double>(), 0.0);
  // Clipping off: L = 0.5·0.04 = 0.02
  EXPECT_NEAR(value_loss(in, {0.0, {}}).loss.item<double>(), 0.02, 1e-12);
}

double ref_value_loss(const testing::RandBatch& b, const torch::Tensor& vpred, const torch::Tensor& vold,
                      const torch::Tensor& ret, double clip, AggMode mode) {
  const auto v = testing::to_mat(vpred), vo = testing::to_mat(vold), r = testing::to_mat(ret);
  const auto l = testing::map2(v, [&](size_t i, size_t j) {
    const double l1 = (v[i][j] - r[i][j]) * (v[i][j] - r[i][j]);
    if (clip <= 0) return l1;
    const double vc = std::min(std::max(v[i][j], vo[i][j] - clip), vo[i][j] + clip);
    return std::max(l1, (vc - r[i][j]) * (vc - r[i][j]));
  });
  return 0.5 * testing::ref_agg(l, testing::to_mat(b.mask), mode, 4.0);
}

TEST(ValueLoss, MatchesLoopReferenceGradientAndMicroBatches) {
  for (uint64_t seed = 0; seed < 50; ++seed) {
    const auto b = testing::rand_batch(seed);
    const torch::Tensor vpred = torch::randn({b.n, b.t}, torch::kDouble);
    const torch::Tensor vold = vpred + torch::randn({b.n, b.t}, torch::kDouble) * 0.5;
    const torch::Tensor ret = torch::randn({b.n, b.t}, torch::kDouble);
    for (AggMode mode : {AggMode::kTokenMean, AggMode::kSeqMeanTokenSum, AggMode::kSeqMeanTokenMean,
                         AggMode::kSeqMeanTokenSumNorm}) {
      const double clip = seed % 4 == 0 ? 0.0 : 0.3;
      const ValueLossOptions opts{clip, {mode, 4.0}};
      auto run = [&](const torch::Tensor& v, int64_t s, int64_t e, const AggContext& ctx) {
        ValueLossInputs in{v, vold.slice(0, s, e), ret.slice(0, s, e), b.mask.slice(0, s, e), ctx};
        return value_loss(in, opts).loss;
      };
      const AggContext ctx = AggContext::from_mask(b.mask);
      EXPECT_NEAR(run(vpred, 0, b.n, ctx).item<double>(), ref_value_loss(b, vpred, vold, ret, clip, mode), 1e-10)
          << "seed " << seed;
      if (seed < 10) testing::expect_grad_matches_fd([&](const torch::Tensor& v) { return run(v, 0, b.n, ctx); }, vpred);
      // micro-batches
      torch::Tensor leaf = vpred.clone().requires_grad_(true);
      run(leaf, 0, b.n, ctx).backward();
      const torch::Tensor g_full = leaf.grad().clone();
      leaf.mutable_grad().zero_();
      for (auto [s, e] : testing::uneven_split(b.n, 3)) run(leaf.slice(0, s, e), s, e, ctx).backward();
      EXPECT_TRUE(torch::allclose(leaf.grad(), g_full, 1e-12, 1e-12)) << "seed " << seed;
      // 2 ranks, each counting its own rows; the counts are summed (the all-reduce).
      const int64_t k = b.n / 2;
      const AggCounts c0 = count_for_agg(b.mask.slice(0, 0, k)), c1 = count_for_agg(b.mask.slice(0, k, b.n));
      AggCounts global = c0;
      global += c1;
      leaf.mutable_grad().zero_();
      if (k > 0) run(leaf.slice(0, 0, k), 0, k, AggContext::from_counts(global)).backward();
      run(leaf.slice(0, k, b.n), k, b.n, AggContext::from_counts(global)).backward();
      EXPECT_TRUE(torch::allclose(leaf.grad(), g_full, 1e-12, 1e-12)) << "2-rank seed " << seed;
    }
  }
}

}  // namespace
}  // namespace keel::learner
