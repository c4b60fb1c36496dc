// Tests of trainer/learner/loss_agg.{h,cpp}: spec §1.6 worked example, loop reference over random
// masks, and micro-batch / data-parallel invariance of the gradient.
#include "trainer/learner/loss_agg.h"

#include <cmath>
#include <limits>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/trainer/learner/loss_test_util.h"
#include "base/error.h"

namespace keel::learner {
namespace {

using testing::Mat;

constexpr AggMode kModes[] = {AggMode::kTokenMean, AggMode::kSeqMeanTokenSum, AggMode::kSeqMeanTokenMean,
                              AggMode::kSeqMeanTokenSumNorm};

TEST(LossAgg, SpecWorkedExample) {
  // ℓ = [[1,2,3],[4,0,0]], m = [[1,1,1],[1,0,0]]
  const torch::Tensor l = torch::tensor({{1.0, 2.0, 3.0}, {4.0, 0.0, 0.0}}, torch::kDouble);
  const torch::Tensor m = torch::tensor({{1.0, 1.0, 1.0}, {1.0, 0.0, 0.0}}, torch::kDouble);
  const AggContext ctx = AggContext::from_mask(m);
  EXPECT_DOUBLE_EQ(ctx.tokens, 4);
  EXPECT_DOUBLE_EQ(ctx.seqs, 2);
  auto agg = [&](AggMode mode, double norm_len = 512) { return agg_loss(l, m, {mode, norm_len}, ctx).item<double>(); };
  EXPECT_NEAR(agg(AggMode::kTokenMean), 2.5, 1e-4);                  // (1+2+3+4)/4
  EXPECT_NEAR(agg(AggMode::kSeqMeanTokenSum), 5.0, 1e-4);            // (6 + 4)/2
  EXPECT_NEAR(agg(AggMode::kSeqMeanTokenMean), 3.0, 1e-4);           // (6/3 + 4/1)/2
  EXPECT_NEAR(agg(AggMode::kSeqMeanTokenSumNorm, 3), 1.6667, 1e-4);  // 10/(2·3), TRL dr_grpo
}

TEST(LossAgg, ModeNamesRoundTripAndUnknownThrows) {
  for (AggMode mode : kModes) EXPECT_EQ(parse_agg_mode(agg_mode_name(mode)), mode);
  EXPECT_THROW(parse_agg_mode("token_mean"), keel::Error);
}

TEST(LossAgg, MatchesLoopReferenceOverRandomMasks) {
  for (uint64_t seed = 0; seed < 60; ++seed) {
    const auto b = testing::rand_batch(seed);
    const torch::Tensor l = torch::randn({b.n, b.t}, torch::kDouble);
    const AggContext ctx = AggContext::from_mask(b.mask);
    for (AggMode mode : kModes) {
      const double norm_len = 1.0 + static_cast<double>(seed % 5);
      const double got = agg_loss(l, b.mask, {mode, norm_len}, ctx).item<double>();
      const double want = testing::ref_agg(testing::to_mat(l), testing::to_mat(b.mask), mode, norm_len);
      EXPECT_NEAR(got, want, 1e-10) << "seed " << seed << " mode " << agg_mode_name(mode);
    }
  }
}

TEST(LossAgg, BoolMaskAndMaskedNonFiniteValuesDoNotLeak) {
  const torch::Tensor l = torch::tensor({{1.0, std::nan(""), 3.0}, {std::numeric_limits<double>::infinity(), 2.0, 0.0}}, torch::kDouble).requires_grad_(true);
  const torch::Tensor m = torch::tensor({{true, false, true}, {false, true, false}});
  const AggContext ctx = AggContext::from_mask(m);
  for (AggMode mode : kModes) {
    const torch::Tensor y = agg_loss(l, m, {mode, 2.0}, ctx);
    EXPECT_TRUE(std::isfinite(y.item<double>())) << agg_mode_name(mode);
    const torch::Tensor g = torch::autograd::grad({y}, {l})[0];
    EXPECT_TRUE(torch::isfinite(g).all().item<bool>()) << agg_mode_name(mode);
    EXPECT_EQ(g[0][1].item<double>(), 0.0);
    EXPECT_EQ(g[1][0].item<double>(), 0.0);
  }
  // token-mean: (1 + 3 + 2)/3
  EXPECT_NEAR(agg_loss(l, m, {AggMode::kTokenMean, 1.0}, ctx).item<double>(), 2.0, 1e-12);
}

TEST(LossAgg, EmptyMiniBatchGivesZeroWithGraph) {
  const torch::Tensor l = torch::randn({3, 4}, torch::kDouble).requires_grad_(true);
  const torch::Tensor m = torch::zeros({3, 4}, torch::kDouble);
  const AggContext ctx = AggContext::from_mask(m);
  for (AggMode mode : kModes) {
    const torch::Tensor y = agg_loss(l, m, {mode, 8.0}, ctx);
    EXPECT_EQ(y.item<double>(), 0.0);
    EXPECT_TRUE(torch::autograd::grad({y}, {l})[0].eq(0).all().item<bool>());
  }
}

TEST(LossAgg, ForgottenContextIsRejected) {
  const torch::Tensor l = torch::ones({2, 2}, torch::kDouble);
  const torch::Tensor m = torch::ones({2, 2}, torch::kDouble);
  EXPECT_THROW(agg_loss(l, m, {AggMode::kTokenMean, 1.0}, AggContext{}), c10::Error);
}

// The gradient of one mini-batch equals the sum of its micro-batches' gradients when every
// micro-batch uses the mini-batch's AggContext; also for a simulated 2-rank data-parallel split in
// which each rank counts its own rows and the counts are summed (the all-reduce).
TEST(LossAgg, MicroBatchAndTwoRankSplitsGiveTheSameGradient) {
  for (uint64_t seed = 0; seed < 30; ++seed) {
    const auto b = testing::rand_batch(seed);
    // A shared parameter θ [T] drives every row: logits ℓ[n,t] = base[n,t]·θ[t] + base[n,t]².
    const torch::Tensor base = torch::randn({b.n, b.t}, torch::kDouble);
    const torch::Tensor theta0 = torch::randn({b.t}, torch::kDouble);
    auto per_token = [&](const torch::Tensor& rows, const torch::Tensor& theta) { return rows * theta + rows * rows; };
    for (AggMode mode : kModes) {
      const AggOptions opts{mode, 3.0};
      const AggContext ctx = AggContext::from_mask(b.mask);
      torch::Tensor theta_full = theta0.clone().requires_grad_(true);
      const torch::Tensor full = agg_loss(per_token(base, theta_full), b.mask, opts, ctx);
      full.backward();

      torch::Tensor theta_mb = theta0.clone().requires_grad_(true);
      double sum = 0;
      for (auto [s, e] : testing::uneven_split(b.n, 3)) {
        const torch::Tensor y = agg_loss(per_token(base.slice(0, s, e), theta_mb), b.mask.slice(0, s, e), opts, ctx);
        y.backward();
        sum += y.item<double>();
      }
      EXPECT_NEAR(sum, full.item<double>(), 1e-12) << "seed " << seed << " " << agg_mode_name(mode);
      EXPECT_TRUE(torch::allclose(theta_mb.grad(), theta_full.grad(), 1e-12, 1e-12))
          << "seed " << seed << " " << agg_mode_name(mode);

      // Two ranks: rank 0 rows [0, k), rank 1 rows [k, N), each with 2 micro-batches.
      const int64_t k = b.n / 2;
      const std::pair<int64_t, int64_t> rank_rows[2] = {{0, k}, {k, b.n}};
      AggCounts global;
      for (auto [s, e] : rank_rows)
        for (auto [ms, me] : testing::uneven_split(e - s, 2)) global += count_for_agg(b.mask.slice(0, s + ms, s + me));
      const AggContext dp_ctx = AggContext::from_counts(global);
      torch::Tensor grad_sum = torch::zeros_like(theta0);
      for (auto [s, e] : rank_rows) {
        torch::Tensor theta_r = theta0.clone().requires_grad_(true);  // each rank's replica
        for (auto [ms, me] : testing::uneven_split(e - s, 2)) {
          if (me <= ms) continue;
          agg_loss(per_token(base.slice(0, s + ms, s + me), theta_r), b.mask.slice(0, s + ms, s + me), opts, dp_ctx)
              .backward();
        }
        if (theta_r.grad().defined()) grad_sum += theta_r.grad();  // all-reduce SUM of gradients
      }
      EXPECT_TRUE(torch::allclose(grad_sum, theta_full.grad(), 1e-12, 1e-12))
          << "2-rank seed " << seed << " " << agg_mode_name(mode);
    }
  }
}

// The invariance above is not automatic: with per-micro-batch (local) denominators token-mean gives a
// different gradient as soon as the micro-batches hold different token counts.
TEST(LossAgg, LocalDenominatorsWouldBreakInvariance) {
  const torch::Tensor l = torch::tensor({{1.0, 2.0, 3.0}, {4.0, 0.0, 0.0}}, torch::kDouble).requires_grad_(true);
  const torch::Tensor m = torch::tensor({{1.0, 1.0, 1.0}, {1.0, 0.0, 0.0}}, torch::kDouble);
  const AggOptions opts{AggMode::kTokenMean, 1.0};
  const AggContext global = AggContext::from_mask(m);
  double global_sum = 0, local_sum = 0;
  for (int64_t r = 0; r < 2; ++r) {
    global_sum += agg_loss(l.slice(0, r, r + 1), m.slice(0, r, r + 1), opts, global).item<double>();
    local_sum += agg_loss(l.slice(0, r, r + 1), m.slice(0, r, r + 1), opts, AggContext::from_mask(m.slice(0, r, r + 1)))
                     .item<double>();
  }
  EXPECT_NEAR(global_sum, 2.5, 1e-12);  // (6 + 4)/4
  EXPECT_NEAR(local_sum, 6.0, 1e-12);   // 6/3 + 4/1
}

TEST(LossAgg, MaskedMean) {
  const torch::Tensor x = torch::tensor({{1.0, 5.0}, {3.0, 7.0}}, torch::kDouble);
  const torch::Tensor m = torch::tensor({{1.0, 0.0}, {1.0, 1.0}}, torch::kDouble);
  EXPECT_NEAR(masked_mean_value(x, m), 11.0 / 3.0, 1e-12);
  EXPECT_EQ(masked_mean_value(x, torch::zeros_like(m)), 0.0);
  EXPECT_NEAR(masked_mean_value(x > 2.0, m), 2.0 / 3.0, 1e-12);
}

}  // namespace
}  // namespace keel::learner
