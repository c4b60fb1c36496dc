// The learner's staleness check of async rollouts: a hand case, and the tensor version against a
// row-by-row loop over random versions, versions-of-now and k (edge cases: nothing stale, all stale,
// k = 0, empty batch).
#include "trainer/rollout/staleness.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <random>

namespace keel::rollout {
namespace {

TEST(Staleness, HandCase) {
  // current version 5, k = 1; rows sampled by versions 5 4 3 5 2
  // staleness 0 1 2 0 3 -> keep rows 0, 1, 3; drop 2 rows; histogram {0: 2, 1: 1}
  const auto r = filter_stale_rows(torch::tensor({5, 4, 3, 5, 2}, torch::kLong), 5, 1);
  EXPECT_TRUE(torch::equal(r.keep, torch::tensor({0, 1, 3}, torch::kLong)));
  EXPECT_EQ(r.dropped, 2);
  EXPECT_EQ(r.metrics.at("async/staleness_0"), 2);
  EXPECT_EQ(r.metrics.at("async/staleness_1"), 1);
  EXPECT_EQ(r.metrics.count("async/staleness_2"), 0u);
  EXPECT_EQ(r.metrics.at("rollout/dropped_stale"), 2);
  EXPECT_NEAR(r.metrics.at("async/staleness_mean"), 6.0 / 5.0, 1e-12);  // (0+1+2+0+3)/5
  EXPECT_EQ(r.metrics.at("async/staleness_max"), 3);
}

TEST(Staleness, MatchesALoopOverRandomBatches) {
  std::mt19937 rng(7);
  for (int seed = 0; seed < 60; ++seed) {
    const int n = seed == 0 ? 0 : static_cast<int>(rng() % 12) + 1;
    const int k = static_cast<int>(rng() % 4);
    const int64_t now = static_cast<int64_t>(rng() % 6) + (seed % 5 == 1 ? 0 : 3);
    std::vector<int64_t> v;
    for (int i = 0; i < n; ++i) v.push_back(now - static_cast<int64_t>(rng() % (seed % 7 == 2 ? 1 : now + 1)));
    const auto r = filter_stale_rows(torch::tensor(v, torch::kLong), now, k);
    std::vector<int64_t> keep;
    std::map<int64_t, int> hist;
    for (int i = 0; i < n; ++i) {
      const int64_t s = now - v[static_cast<size_t>(i)];
      if (s <= k) keep.push_back(i), ++hist[s];
    }
    ASSERT_EQ(r.keep.numel(), static_cast<int64_t>(keep.size())) << seed;
    for (size_t i = 0; i < keep.size(); ++i) EXPECT_EQ(r.keep[static_cast<int64_t>(i)].item<int64_t>(), keep[i]);
    EXPECT_EQ(r.dropped, n - static_cast<int64_t>(keep.size()));
    for (int d = 0; d <= k; ++d) EXPECT_EQ(r.metrics.at("async/staleness_" + std::to_string(d)), hist[d]) << seed;
  }
}

TEST(Staleness, RejectsRowsNewerThanTheLearner) {
  EXPECT_THROW(filter_stale_rows(torch::tensor({3}, torch::kLong), 2, 1), c10::Error);
  EXPECT_THROW(filter_stale_rows(torch::tensor({1.0}), 2, 1), c10::Error);
}

TEST(Staleness, WholeUnits) {
  // groups of 4, mini-batches of 6: unit lcm(4, 6) = 12
  EXPECT_EQ(whole_units(30, 4, 6), 24);
  EXPECT_EQ(whole_units(11, 4, 6), 0);
  EXPECT_EQ(whole_units(16, 4, 8), 16);
}

}  // namespace
}  // namespace keel::rollout
