// Tests of meanstd / clip / minmax (spec rewards.md A2): worked examples, the Chan update against
// the statistics of the concatenated history, zero-std policies, exact state round trip.
#include "rewards/schemes/running_norm.h"

#include <gtest/gtest.h>

#include "tests/rewards/schemes/test_util.h"
#include "base/error.h"

namespace keel::rewards {
namespace {

using testing::dt;

TEST(RunningNorm, MeanStdWorkedExampleFirstBatch) {
  // [1, 2, 3]: μ = 2, population var = 2/3, σ = 0.8164966 -> [−1.2247449, 0, 1.2247449].
  RunningMeanStd s;
  s.update(dt({1, 2, 3}));
  auto out = meanstd_reward(dt({1, 2, 3}), s, {});
  EXPECT_NEAR(out[0].item<double>(), -1.2247449, 1e-6);
  EXPECT_NEAR(out[1].item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(out[2].item<double>(), 1.2247449, 1e-6);
}

TEST(RunningNorm, ClipWorkedExampleFirstBatch) {
  // [1, 2, 3, 10]: μ = 4, var = (9+4+1+36)/4 = 12.5, σ = 3.5355339 -> clamp to [0.4644661, 7.5355339].
  RunningMeanStd s;
  s.update(dt({1, 2, 3, 10}));
  auto out = clip_reward(dt({1, 2, 3, 10}), s, {});
  EXPECT_NEAR(out[0].item<double>(), 1.0, 1e-12);
  EXPECT_NEAR(out[2].item<double>(), 3.0, 1e-12);
  EXPECT_NEAR(out[3].item<double>(), 7.5355339, 1e-6);
}

TEST(RunningNorm, MinMaxWorkedExampleFirstBatch) {
  // [1, 2, 5] -> (r − 1)/4 = [0, 0.25, 1]; zeros before any update.
  RunningMinMax s;
  EXPECT_TRUE(torch::equal(minmax_reward(dt({1, 2}), s, {}), torch::zeros({2}, torch::kFloat64)));
  s.update(dt({1, 2, 5}));
  auto out = minmax_reward(dt({1, 2, 5}), s, {});
  EXPECT_NEAR(out[0].item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(out[1].item<double>(), 0.25, 1e-12);
  EXPECT_NEAR(out[2].item<double>(), 1.0, 1e-12);
}

TEST(RunningNorm, ChanUpdateMatchesConcatenatedHistory) {
  for (int seed = 0; seed < 60; ++seed) {
    torch::manual_seed(seed);
    RunningMeanStd s;
    RunningMinMax mm;
    std::vector<torch::Tensor> seen;
    const int batches = 1 + seed % 6;
    for (int b = 0; b < batches; ++b) {
      auto x = torch::randn({1 + (seed * 7 + b) % 9}, torch::kFloat64) * (1 + b) + seed % 5;
      s.update(x);
      mm.update(x);
      seen.push_back(x);
    }
    // Slow reference: two-pass statistics of everything seen so far.
    auto all = torch::cat(seen);
    double mean = 0;
    for (int64_t i = 0; i < all.numel(); ++i) mean += all[i].item<double>();
    mean /= all.numel();
    double var = 0;
    for (int64_t i = 0; i < all.numel(); ++i) var += std::pow(all[i].item<double>() - mean, 2);
    var /= all.numel();
    EXPECT_NEAR(s.mean(), mean, 1e-10);
    EXPECT_NEAR(s.var(), var, 1e-10);
    EXPECT_EQ(s.count(), static_cast<double>(all.numel()));
    EXPECT_EQ(mm.min(), all.min().item<double>());
    EXPECT_EQ(mm.max(), all.max().item<double>());
  }
}

TEST(RunningNorm, ZeroStdPolicies) {
  RunningMeanStd s;
  s.update(dt({2, 2}));
  // floor: σ = sqrt(1e-8) = 1e-4 -> (3 − 2)/1e-4 = 1e4; one: σ := 1 -> 1.
  EXPECT_NEAR(meanstd_reward(dt({3}), s, {})[0].item<double>(), 1e4, 1e-6);
  MeanStdOptions one;
  one.zero_std = "one";
  EXPECT_NEAR(meanstd_reward(dt({3}), s, one)[0].item<double>(), 1.0, 1e-12);
  RunningMinMax mm;
  mm.update(dt({4, 4}));
  EXPECT_NEAR(minmax_reward(dt({5}), mm, {})[0].item<double>(), 1e8, 1e-3);
}

TEST(RunningNorm, StateRoundTripIsExact) {
  RunningMeanStd s;
  RunningMinMax mm;
  s.update(dt({0.1, 0.7, -3.3}));
  s.update(dt({1.0 / 3.0}));
  mm.update(dt({0.1, 0.7, -3.3}));
  StateDict st;
  s.save_state(st, "meanstd/");
  mm.save_state(st, "minmax/");
  RunningMeanStd s2;
  RunningMinMax mm2;
  s2.load_state(st, "meanstd/");
  mm2.load_state(st, "minmax/");
  EXPECT_EQ(s2.count(), s.count());
  EXPECT_EQ(s2.mean(), s.mean());
  EXPECT_EQ(s2.var(), s.var());
  EXPECT_EQ(mm2.initialized(), mm.initialized());
  EXPECT_EQ(mm2.min(), mm.min());
  EXPECT_EQ(mm2.max(), mm.max());
  // Continuing after a restore gives bit-identical results.
  s.update(dt({2.5, 9.0}));
  s2.update(dt({2.5, 9.0}));
  EXPECT_TRUE(torch::equal(meanstd_reward(dt({1.5}), s, {}), meanstd_reward(dt({1.5}), s2, {})));
  StateDict missing;
  EXPECT_THROW(s2.load_state(missing, "meanstd/"), Error);
}

TEST(RunningNorm, ReadersValidate) {
  MeanStdOptions o;
  EXPECT_TRUE(testing::read_yaml("  zero_std: one\n", o, read_meanstd_options).empty());
  EXPECT_EQ(o.zero_std, "one");
  EXPECT_EQ(testing::read_yaml("  var_floor: 0\n", o, read_meanstd_options).size(), 1u);
  MinMaxOptions m;
  EXPECT_EQ(testing::read_yaml("  range_floor: -1\n", m, read_minmax_options).size(), 1u);
}

}  // namespace
}  // namespace keel::rewards
