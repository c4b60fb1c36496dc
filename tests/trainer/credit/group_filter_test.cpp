// Tests of the DAPO dynamic-sampling group filter (spec §2.3).
#include "trainer/credit/group_filter.h"

#include <gtest/gtest.h>

#include "tests/trainer/credit/reference_estimators.h"

namespace keel::credit {
namespace {

using namespace keel::credit::testing;

TEST(GroupFilter, SpecWorkedExample) {
  // acc [1,1,1,1] (group 4) and [0,0,0,0] (group 9) are dropped, [1,0,0,1] (group 2) kept; rows shuffled.
  const auto metric = vec({1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1});
  const auto gid = ids({4, 9, 2, 4, 9, 2, 4, 9, 4, 9, 2, 2});
  EXPECT_EQ(dynamic_sampling_keep_groups(metric, gid), (std::vector<int64_t>{2}));
  EXPECT_TRUE(close(dynamic_sampling_row_mask(metric, gid).to(torch::kDouble), Vec{0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1, 1}));
}

TEST(GroupFilter, MatchesLoopReferenceOnRandomBatches) {
  for (uint32_t seed = 1400; seed < 1460; ++seed) {
    const auto b = random_batch(seed, true, seed % 2 == 0);
    std::vector<int64_t> want;
    for (size_t i = 0; i < b.gid.size(); ++i) {
      bool varied = false;
      for (size_t j = 0; j < b.gid.size(); ++j) varied |= b.gid[j] == b.gid[i] && b.reward[j] != b.reward[i];
      if (varied && std::find(want.begin(), want.end(), b.gid[i]) == want.end()) want.push_back(b.gid[i]);
    }
    EXPECT_EQ(dynamic_sampling_keep_groups(vec(b.reward), ids(b.gid)), want) << "seed " << seed;
  }
}

}  // namespace
}  // namespace keel::credit
