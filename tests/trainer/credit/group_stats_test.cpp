// Tests of the shared group-statistics helper (spec §0.2).
#include "trainer/credit/group_stats.h"

#include <gtest/gtest.h>

#include "tests/trainer/credit/reference_estimators.h"

namespace keel::credit {
namespace {

using namespace keel::credit::testing;

TEST(GroupStats, UnbiasedStdAndNonContiguousGroups) {
  // Rows of group 7 are 0, 2, 3 with x = 1, 0, 1: mean 2/3, Σ(x−m)² = 1/9+4/9+1/9 = 2/3, /(3−1) → std 0.57735.
  // Group −5 (rows 1, 4): x = 4, 2 → mean 3, std sqrt(2) = 1.41421. Group 9 (row 5): singleton → std 0.
  const auto idx = group_index(ids({7, -5, 7, 7, -5, 9}));
  EXPECT_EQ(idx.num_groups, 3);
  const auto st = group_stats(vec({1, 4, 0, 1, 2, 5}), idx);
  // dense order follows sorted ids: −5, 7, 9
  EXPECT_TRUE(close(st.count, Vec{2, 3, 1}));
  EXPECT_TRUE(close(st.mean, Vec{3.0, 2.0 / 3.0, 5.0}));
  EXPECT_TRUE(close(st.std, Vec{1.414214, 0.577350, 0.0}));
  const auto pop = group_stats(vec({1, 4, 0, 1, 2, 5}), idx, {}, /*unbiased=*/false);
  EXPECT_TRUE(close(pop.std, Vec{1.0, 0.471405, 0.0}));  // sqrt(2/2), sqrt((2/3)/3)
}

TEST(GroupStats, InvalidRowsAreExcludedEvenWhenNaN) {
  const auto idx = group_index(ids({0, 0, 0}));
  const auto st = group_stats(vec({1, NAN, 3}), idx, torch::tensor({true, false, true}));
  EXPECT_TRUE(close(st.count, Vec{2}));
  EXPECT_TRUE(close(st.mean, Vec{2}));
  EXPECT_TRUE(close(st.std, Vec{1.414214}));
}

TEST(GroupStats, MatchesLoopReferenceOnRandomBatches) {
  for (uint32_t seed = 0; seed < 60; ++seed) {
    const auto b = random_batch(seed);
    const auto idx = group_index(ids(b.gid));
    const auto st = group_stats(vec(b.reward), idx);
    const auto inv = idx.inverse;
    for (size_t i = 0; i < b.gid.size(); ++i) {
      Vec x;
      for (size_t j = 0; j < b.gid.size(); ++j)
        if (b.gid[j] == b.gid[i]) x.push_back(b.reward[j]);
      const int64_t g = inv[static_cast<int64_t>(i)].item<int64_t>();
      EXPECT_NEAR(st.mean[g].item<double>(), ref::mean_of(x), 1e-12) << "seed " << seed;
      EXPECT_NEAR(st.std[g].item<double>(), ref::std_of(x), 1e-12) << "seed " << seed;
      EXPECT_EQ(st.count[g].item<double>(), static_cast<double>(x.size()));
    }
  }
}

}  // namespace
}  // namespace keel::credit
